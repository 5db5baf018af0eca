"""Matrix rules that tidy a gradient (:func:`tidy`) and the naming of repeated subexpressions
for display (:func:`name_repeated`): ``Ax + Aᵀx = (A + Aᵀ)x``, ``½A − ½B = ½(A − B)``,
``exp(z) / 𝟏ᵀexp(z) = softmax(z)``, ``softmax(z − c𝟏) = softmax(z)``, ``𝟏ᵀsoftmax(z) = 1``,
and entrywise fractions cancelled (``((𝟏 − y) ⊘ (𝟏 − σ) − y ⊘ σ) ⊙ σ ⊙ (𝟏 − σ) = σ − y``).

>>> from sympy import MatrixSymbol
>>> A, x = MatrixSymbol("A", 3, 3), MatrixSymbol("x", 3, 1)
>>> tidy(A * x + A.T * x)
(A + A.T)*x
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy
from sympy import (
    HadamardPower,
    HadamardProduct,
    Identity,
    MatAdd,
    MatMul,
    MatrixExpr,
    MatrixSymbol,
    OneMatrix,
    Transpose,
    ZeroMatrix,
)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from .matrix_algebra import (
    AsScalar,
    OneHot,
    OneHotRows,
    Softmax,
    _fold,
    _hadamard,
    _madd,
    _mm,
    _ones_scale,
    _product,
    _scalar,
    _simple,
    _split_coeff,
)


# ----- matrix rules -------------------------------------------------------------------------
def tidy(e: Any) -> Any:
    """Apply the matrix rules bottom-up until nothing changes (a few passes at most).

    >>> A, x = MatrixSymbol("A", 3, 3), MatrixSymbol("x", 3, 1)
    >>> tidy(A * x + A.T * x)
    (A + A.T)*x
    """
    for _ in range(8):
        new = _rewrite(e)
        if new == e:
            break
        e = new
    cancelled = _cancel_entrywise(e)
    return e if cancelled == e else tidy(cancelled)


# ----- entrywise algebra: ((1 − y) ⊘ (1 − σ) − y ⊘ σ) ⊙ σ ⊙ (1 − σ) = σ − y ---------------------
#: Entrywise parts larger than this (SymPy operations) are left as they are.
MAX_ENTRYWISE_OPS = 60


def _is_entrywise(e: Any) -> bool:
    """An operation applied entry by entry (its value at (i, j) needs only entries (i, j))."""
    if isinstance(e, (MatAdd, HadamardProduct, HadamardPower, ElementwiseApplyFunction)):
        return True
    if isinstance(e, MatMul):
        _, rest = _split_coeff(e)
        return len(rest) == 1 or _ones_scale(e) is not None
    return False


def _to_scalar(e: Any, leaves: dict) -> Any:
    if isinstance(e, MatAdd):
        return sympy.Add(*[_to_scalar(a, leaves) for a in e.args])
    if isinstance(e, HadamardProduct):
        return sympy.Mul(*[_to_scalar(a, leaves) for a in e.args])
    if isinstance(e, HadamardPower):
        return sympy.Pow(_to_scalar(e.base, leaves), e.exp)
    if isinstance(e, ElementwiseApplyFunction):
        return e.function.expr.xreplace({e.function.variables[0]: _to_scalar(e.expr, leaves)})
    if isinstance(e, MatMul):
        scale = _ones_scale(e)
        if scale is not None:
            return scale
        coeff, rest = _split_coeff(e)
        if len(rest) == 1:
            return coeff * _to_scalar(rest[0], leaves)
    if isinstance(e, OneMatrix):
        return sympy.S.One
    if isinstance(e, ZeroMatrix):
        return sympy.S.Zero
    if e not in leaves:
        leaves[e] = sympy.Dummy(f"L{len(leaves)}", real=True)
    return leaves[e]


def _from_scalar(x: Any, matrices: dict, shape: tuple) -> Any:
    """The matrix expression of a scalar expression in the leaves' symbols (None: not one)."""
    if x in matrices:
        return matrices[x]
    if not x.has(*matrices):
        return _mm(x, OneMatrix(*shape))
    if isinstance(x, sympy.Add):
        parts = [_from_scalar(a, matrices, shape) for a in x.args]
        return None if any(p is None for p in parts) else _madd(*parts)
    if isinstance(x, sympy.Mul):
        coeff = sympy.Mul(*[a for a in x.args if not a.has(*matrices)])
        parts = [_from_scalar(a, matrices, shape) for a in x.args if a.has(*matrices)]
        if any(p is None for p in parts):
            return None
        out = parts[0]
        for p in parts[1:]:
            out = _hadamard(out, p)
        return _mm(coeff, out)
    if isinstance(x, sympy.Pow) and not x.exp.has(*matrices):
        base = _from_scalar(x.base, matrices, shape)
        return None if base is None else HadamardPower(base, x.exp)
    inner = [a for a in x.args if a.has(*matrices)]
    if len(inner) == 1:  # f(u): an elementwise function of one matrix
        arg = _from_scalar(inner[0], matrices, shape)
        if arg is None:
            return None
        u = sympy.Dummy("u", real=True)
        return ElementwiseApplyFunction(sympy.Lambda(u, x.xreplace({inner[0]: u})), arg)
    return None


def _cancel_entrywise(e: Any) -> Any:
    """Cancel the fractions of each maximal entrywise part that has a quotient, when that
    makes it smaller (``sympy.cancel`` over the entries, the other matrices as symbols)."""
    if not isinstance(e, MatrixExpr) or isinstance(e, (MatrixSymbol, OneMatrix, OneHot,
                                                       OneHotRows)):
        return e
    if _is_entrywise(e) and e.has(HadamardPower) and any(
            isinstance(p, HadamardPower) and p.exp.is_negative for p in sympy.preorder_traversal(e)):
        leaves: dict = {}
        scalar = _to_scalar(e, leaves)
        if sympy.count_ops(scalar) <= MAX_ENTRYWISE_OPS:
            try:
                cancelled = sympy.factor_terms(sympy.cancel(scalar))
            except NotImplementedError:  # SymPy: a 1×1 product (noncommutative) inside
                return e
            if sympy.count_ops(cancelled) < sympy.count_ops(scalar):
                back = _from_scalar(cancelled, {v: k for k, v in leaves.items()}, e.shape)
                if back is not None:
                    return back
    if isinstance(e, ElementwiseApplyFunction):
        return ElementwiseApplyFunction(e.function, _cancel_entrywise(e.expr))
    args = [_cancel_entrywise(a) for a in e.args]
    if all(a is b for a, b in zip(args, e.args)):
        return e
    try:
        return e.func(*args)
    except (TypeError, ValueError):
        return e


def _rewrite(e: Any) -> Any:
    if not isinstance(e, sympy.Basic) or e.is_Atom or isinstance(e, (MatrixSymbol, OneHot,
                                                                      OneHotRows)):
        return e
    if isinstance(e, ElementwiseApplyFunction):
        return ElementwiseApplyFunction(e.function, _rewrite(e.expr))
    if isinstance(e, (OneMatrix, ZeroMatrix, Identity)):
        return e
    args = [_rewrite(a) for a in e.args]
    if isinstance(e, Transpose):
        return _transpose_of(args[0])
    if isinstance(e, MatMul):
        return _rule_softmax(_rows_sum_to_one(_fold(MatMul(*args).doit(deep=False))))
    if isinstance(e, MatAdd):
        return _collect(MatAdd(*args).doit(deep=False))
    if isinstance(e, HadamardProduct):
        out = args[0]
        for a in args[1:]:
            out = _hadamard(out, a)
        return out
    if isinstance(e, AsScalar):
        return _scalar_rules(args[0])
    if isinstance(e, Softmax):
        return Softmax(_unshifted(args[0]))
    if isinstance(e, sympy.Lambda):
        return e
    try:
        return e.func(*args)
    except (TypeError, ValueError):
        return e


def _scalar_rules(m: MatrixExpr) -> Any:
    """``𝟏ᵀ softmax(z) = 𝟏ᵀ onehot(y) = 1``, also over sums (``𝟏ᵀ(softmax(z) − onehot(y)) = 0``,
    what a max-shifted cross-entropy leaves); ``𝟏ᵀ(s 𝟏) = n s``; otherwise the 1×1 product as
    a scalar."""
    if isinstance(m, MatMul):
        coeff, rest = _split_coeff(m)
        if len(rest) == 2 and isinstance(rest[0], OneMatrix):
            total = _known_sum(rest[1], rows=False)
            if total is not None:
                return coeff * total
    return _scalar(m)


def _known_sum(m: Any, rows: bool) -> Any:
    """c where the entries of column vector ``m`` sum to c (``rows=False``), or where each row
    of matrix ``m`` does (``rows=True``): softmax and one-hot vectors and rows sum to one, and
    sums and multiples of them follow. None where the algebra does not know it."""
    if (m.shape[1] == 1) == rows:
        return None
    if isinstance(m, (Softmax, OneHotRows if rows else OneHot)):
        return sympy.S.One
    if isinstance(m, MatAdd):
        totals = [_known_sum(a, rows) for a in m.args]
        return None if any(t is None for t in totals) else sympy.Add(*totals)
    if isinstance(m, MatMul):
        coeff, rest = _split_coeff(m)
        total = _known_sum(rest[0], rows) if len(rest) == 1 else None
        return None if total is None else coeff * total
    return None


def _transpose_of(a: Any) -> Any:
    """``Aᵀᵀ = A``, ``(𝟏 bᵀ)ᵀ = b 𝟏ᵀ`` (products of names only); a larger expression keeps its
    transpose outside, as a textbook writes ``δᵀ𝟏``."""
    if isinstance(a, Transpose):
        return a.arg
    if a.shape == (1, 1) and isinstance(a, MatrixSymbol):
        return a
    if isinstance(a, OneMatrix):
        return OneMatrix(a.shape[1], a.shape[0])
    if isinstance(a, MatMul):
        coeff, rest = _split_coeff(a)
        if all(_simple(r) for r in rest):
            return _fold(MatMul(coeff, *[_transpose_of(r) for r in reversed(rest)]))
        if coeff != 1:  # (c M)ᵀ = c Mᵀ
            return _mm(coeff, _transpose_of(_product(sympy.S.One, rest)))
    return Transpose(a)


def _terms(e: Any) -> list[tuple[Any, list]]:
    """A sum's terms as (coefficient, matrix factors)."""
    out = []
    for t in MatAdd.make_args(e) if isinstance(e, MatAdd) else [e]:
        if isinstance(t, MatMul):
            out.append(_split_coeff(t))
        else:
            out.append((sympy.S.One, [t]))
    return out


def _collect(e: Any) -> Any:
    """``A x + B x = (A + B) x`` and ``A x + A y = A (x + y)`` for the terms that share the
    factor; a scalar common to every term (up to sign) comes out: ``½A − ½B = ½(A − B)``."""
    if not isinstance(e, MatAdd):
        return e
    terms = _terms(e)
    for side in (-1, 0):
        groups: dict[Any, list[int]] = {}
        for i, (_, f) in enumerate(terms):
            if len(f) >= 2:
                groups.setdefault(f[side], []).append(i)
        shared = next((factor for factor, members in groups.items() if len(members) >= 2), None)
        if shared is None:
            continue
        members = groups[shared]
        if side == -1:
            inner = _collect(_madd(*[_product(terms[i][0], terms[i][1][:-1]) for i in members]))
            combined = _fold(MatMul(inner, shared))
        else:
            inner = _collect(_madd(*[_product(terms[i][0], terms[i][1][1:]) for i in members]))
            combined = _fold(MatMul(shared, inner))
        rest = [_product(c, f) for i, (c, f) in enumerate(terms) if i not in members]
        return _collect(_madd(combined, *rest)) if rest else combined
    if not all(c.is_Rational for c, _ in terms):  # abs() of a symbolic scalar may not exist
        return e
    sizes = {abs(c) for c, _ in terms}
    if len(sizes) == 1:
        common = sizes.pop()
        if common not in (0, 1):
            return _fold(MatMul(common, _madd(*[_product(c / common, f) for c, f in terms])))
    return e


def _rule_softmax(e: Any) -> Any:
    """``exp(z) / (𝟏ᵀ exp(z))`` is ``softmax(z)`` (also inside a longer product)."""
    if not isinstance(e, MatMul):
        return e
    coeff, rest = _split_coeff(e)
    for i, factor in enumerate(rest):
        if not _is_exp(factor):
            continue
        total = AsScalar(MatMul(OneMatrix(1, factor.shape[0]), factor))
        numer, denom = sympy.fraction(sympy.together(coeff))
        quotient = sympy.cancel(denom / total) if denom.has(total) else None
        if quotient is not None and not quotient.has(total):
            new = rest[:i] + [Softmax(factor.expr)] + rest[i + 1:]
            return _product(numer / quotient, new)
    return e


def _rows_sum_to_one(e: Any) -> Any:
    """softmax(S) 𝟏 = onehot(Y) 𝟏 = 𝟏: each row of a softmax or a one-hot matrix sums to one
    (also over sums: ``(softmax(S) − onehot(Y)) 𝟏 = 0``, what a row-max shift leaves)."""
    if not isinstance(e, MatMul):
        return e
    coeff, rest = _split_coeff(e)
    for i in range(len(rest) - 1):
        total = _known_sum(rest[i], rows=True)
        if total is not None and isinstance(rest[i + 1], OneMatrix):
            if total == 0:
                return ZeroMatrix(*e.shape)
            ones = OneMatrix(rest[i].shape[0], rest[i + 1].shape[1])
            return _product(coeff * total, rest[:i] + [ones] + rest[i + 2:])
    return e


def _shift(t: Any, z: Any) -> bool:
    """A term of ``z`` that softmax ignores: c𝟏 (a vector), or v𝟏ᵀ (the same in each row)."""
    if z.shape[1] == 1:
        return _ones_scale(t) is not None
    return isinstance(t, MatMul) and isinstance(t.args[-1], OneMatrix) and t.args[-1].shape[0] == 1


def _unshifted(z: Any) -> Any:
    """softmax(z − c𝟏) = softmax(z) (and a matrix's softmax of rows ignores v𝟏ᵀ)."""
    if not isinstance(z, MatAdd):
        return z
    kept = [t for t in z.args if not _shift(t, z)]
    return _madd(*kept) if kept and len(kept) < len(z.args) else z


def _is_exp(m: Any) -> bool:
    return isinstance(m, ElementwiseApplyFunction) and m.shape[1] == 1 and \
        m.function.expr == sympy.exp(m.function.variables[0])


# ----- naming repeated subexpressions (what a textbook does: Z = XW + 𝟏bᵀ, H = relu(Z)) -----
MAX_NAMES = 8


def _children(e: Any) -> tuple:
    if isinstance(e, ElementwiseApplyFunction):
        return (e.expr,)  # not into the function's own body
    if isinstance(e, (MatrixSymbol, OneMatrix, OneHot, Identity, ZeroMatrix)) or \
            not isinstance(e, sympy.Basic):
        return ()
    return e.args


def _nodes(e: Any) -> int:
    return 1 + sum(_nodes(c) for c in _children(e))


def _occurrences(exprs: Sequence[Any]) -> dict[Any, int]:
    counts: dict[Any, int] = {}

    def walk(e: Any) -> None:
        counts[e] = counts.get(e, 0) + 1
        for c in _children(e):
            walk(c)

    for e in exprs:
        walk(e)
    return counts


def _worth_naming(e: Any) -> bool:
    if not isinstance(e, MatrixExpr) or _simple(e) or isinstance(e, Transpose):
        return False
    if isinstance(e, MatMul) and all(_simple(f) for f in _split_coeff(e)[1]) and \
            len(_split_coeff(e)[1]) <= 2:
        return False  # X W, 𝟏bᵀ: short enough to write again
    return isinstance(e, ElementwiseApplyFunction) or _nodes(e) >= 3


def name_repeated(exprs: Sequence[Any], taken: set[str]) -> tuple[list[tuple[Any, Any]], list[Any]]:
    """Name subexpressions used more than once, innermost first: ``[(Z_1, definition)...]``
    and the expressions written with the names."""
    letter = next(c for c in ("Z", "U", "V", "T") if not any(n.startswith(c) for n in taken))
    exprs = list(exprs)
    definitions: list[tuple[Any, Any]] = []
    for k in range(1, MAX_NAMES + 1):
        counts = _occurrences(exprs + [d for _, d in definitions])
        repeated = [e for e, n in counts.items() if n >= 2 and _worth_naming(e)]
        if not repeated:
            break
        target = min(repeated, key=lambda e: (_nodes(e), sympy.default_sort_key(e)))
        name = MatrixSymbol(f"{letter}_{k}", *target.shape)
        table = {target: name}
        exprs = [_replace(e, table) for e in exprs]
        definitions = [(n, _replace(d, table)) for n, d in definitions]
        definitions.append((name, target))
    while True:  # a name used once after all (inside a repeated expression): write it out
        counts = _occurrences(exprs + [d for _, d in definitions])
        once = next(((n, d) for n, d in definitions if counts.get(n, 0) <= 1), None)
        if once is None:
            break
        definitions = [(n, _replace(d, {once[0]: once[1]})) for n, d in definitions if n != once[0]]
        exprs = [_replace(e, {once[0]: once[1]}) for e in exprs]
    renumber = {n: MatrixSymbol(f"{letter}_{k}", *n.shape)
                for k, (n, _) in enumerate(definitions, start=1)}
    definitions = [(renumber[n], _replace(d, renumber)) for n, d in definitions]
    return definitions, [_replace(e, renumber) for e in exprs]


def _replace(e: Any, table: dict) -> Any:
    if e in table:
        return table[e]
    if isinstance(e, ElementwiseApplyFunction):
        return ElementwiseApplyFunction(e.function, _replace(e.expr, table))
    children = _children(e)
    if not children:
        return e
    new = [_replace(c, table) for c in children]
    if all(a is b for a, b in zip(new, children)):
        return e
    return e.func(*new)


def tree_size(exprs: Sequence[Any]) -> int:
    """Nodes of the expression trees, a shared subexpression counted at every use, in time
    linear in the number of distinct subexpressions."""
    sizes: dict[Any, int] = {}

    def size(e: Any) -> int:
        known = sizes.get(e)
        if known is None:
            children = _children(e) if isinstance(e, sympy.Basic) else ()
            known = sizes[e] = 1 + sum(size(c) for c in children)
        return known

    return sum(size(e) for e in exprs)
