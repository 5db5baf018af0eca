"""Gradients in matrix notation: ``∇_w ½‖Xw − y‖² = Xᵀ(Xw − y)``, built from the array graph.

The function is traced at array level (:mod:`workbench.arrays`: one node per array operation)
and differentiated there by the graph's own reverse mode (:func:`workbench.arrays.autodiff.vjp`).
Each node of the gradient is then written as a SymPy matrix expression:

* a float array parameter of shape ``(n,)`` is a column vector ``MatrixSymbol(name, n, 1)``, one
  of shape ``(m, n)`` a matrix; scalars are SymPy symbols; arrays with more axes have no matrix
  form here;
* contractions (``@``, ``dot``, ``einsum`` of two operands) become products with transposes,
  elementwise products ``⊙`` (``HadamardProduct``), broadcasting becomes products with ones
  vectors ``𝟏`` (``OneMatrix``), sums become ``𝟏ᵀ v``, ``M 𝟏``...;
* elementwise functions apply to whole matrices (``ElementwiseApplyFunction``), printed as
  ``exp(Xw)``; a derivative at a kink is an indicator ``𝟙[h > 0]`` with torch's convention
  stated, as in the element display.

A few matrix rules then tidy the result (:func:`tidy`): products by 1 and by broadcast constants
fold, transposes move onto the factors, ``Ax + Aᵀx`` collects to ``(A + Aᵀ)x``, and
``exp(z) / 𝟏ᵀexp(z)`` is ``softmax(z)``. Programs that work element by element (a Python loop
over entries), or use operations without a matrix form here, raise :class:`NoMatrixForm` with
the reason, and :func:`wb.derivative` shows the element form instead.

>>> import numpy as np
>>> X, y = np.ones((4, 3)), np.ones(4)
>>> forms = matrix_gradient(lambda w, X, y: 0.5 * np.sum((X @ w - y) ** 2), (np.ones(3), X, y))
>>> forms.text(0)
'X.T*(X*w - y)'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
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
from sympy.matrices.expressions.matexpr import MatrixElement

from ..errors import WorkbenchError
from ..symbolic.to_sympy import build, number, symbol_for

#: Matrix formulas with more tree nodes than this are not built (shared subexpressions are
#: counted at every use: a deep composition doubles at each level).
MAX_TREE = 2000
#: Scalar element accesses of differentiated data beyond this count mean the program works
#: element by element (a Python loop): the result would be a sum of unit vectors, not a formula.
MAX_ELEMENT_ACCESSES = 2


class NoMatrixForm(WorkbenchError, ValueError):
    """The program has no closed matrix form here; ``str(error)`` says why (one line)."""


class InvalidFormError(WorkbenchError, ValueError):
    """``form=`` is not one of ``"auto"``, ``"matrix"``, ``"elements"``."""


# ----- display-only matrix objects ---------------------------------------------------------
class AsScalar(sympy.Expr):
    """A 1×1 matrix expression used as a scalar (``𝟏ᵀv``, ``xᵀAx``): printed as the matrix."""

    is_commutative = True

    @property
    def matrix(self) -> MatrixExpr:
        return self.args[0]

    def _eval_is_real(self):
        return True


class Softmax(MatrixExpr):
    """``softmax(z) = exp(z) / 𝟏ᵀexp(z)`` of a column vector."""

    @property
    def shape(self):
        return self.args[0].shape


class Extreme(sympy.Expr):
    """``max(z)`` (or ``min``) of all entries of a matrix, a scalar."""

    is_commutative = True

    def __new__(cls, m, kind):
        kind = kind if isinstance(kind, sympy.Symbol) else sympy.Symbol(str(kind))
        return super().__new__(cls, m, kind)

    def _eval_is_real(self):
        return True


class RowExtreme(MatrixExpr):
    """The column of each row's ``max`` (or ``min``) of a matrix."""

    def __new__(cls, m, kind):
        kind = kind if isinstance(kind, sympy.Symbol) else sympy.Symbol(str(kind))
        return super().__new__(cls, m, kind)

    @property
    def shape(self):
        return (self.args[0].shape[0], 1)


class OneHot(MatrixExpr):
    """The unit column vector ``e_k`` of length ``n`` (``onehot(k)``); ``label`` names ``k``."""

    def __new__(cls, k, n, label):
        label = label if isinstance(label, sympy.Symbol) else sympy.Symbol(str(label))
        return super().__new__(cls, sympy.Integer(k), sympy.Integer(n), label)

    @property
    def shape(self):
        return (self.args[1], 1)


def _scalar(e: MatrixExpr) -> Any:
    """A 1×1 matrix as a scalar (unwrapping ``s·𝟏₁ₓ₁`` and ``s·I₁``)."""
    e = _fold(e)
    if isinstance(e, (OneMatrix, Identity)):
        return sympy.S.One
    if isinstance(e, MatMul):
        coeff, rest = _split_coeff(e)
        if len(rest) == 1 and isinstance(rest[0], (OneMatrix, Identity)):
            return coeff
    return AsScalar(e)


def _split_coeff(e: MatMul) -> tuple[Any, list]:
    coeff = [a for a in e.args if not getattr(a, "is_Matrix", False)]
    rest = [a for a in e.args if getattr(a, "is_Matrix", False)]
    return sympy.Mul(*coeff), rest


def _ones_scale(e: Any) -> Any | None:
    """``s`` when ``e`` is ``s·𝟏`` (a broadcast scalar), else None."""
    if isinstance(e, OneMatrix):
        return sympy.S.One
    if isinstance(e, MatMul):
        coeff, rest = _split_coeff(e)
        if rest and all(isinstance(r, OneMatrix) for r in rest):
            return coeff * sympy.Mul(*[r.shape[1] for r in rest[:-1]])
    return None


def _flat_factors(e: MatMul) -> list:
    out = []
    for a in e.args:
        out.extend(_flat_factors(a) if isinstance(a, MatMul) else [a])
    return out


def _fold(e: Any) -> Any:
    """SymPy's own canonical products (``𝟏ᵀ𝟏 = n``), without evaluating elementwise functions,
    and without spreading a scalar over a sum (``½(A − B)`` stays as it is)."""
    if isinstance(e, MatMul):
        factors = _flat_factors(e)
        coeff = sympy.Mul(*[a for a in factors if not getattr(a, "is_Matrix", False)])
        rest = [a for a in factors if getattr(a, "is_Matrix", False)]
        if coeff == 0:
            return ZeroMatrix(*e.shape)
        merged: list = []
        for r in rest:  # 𝟏(1×n)·𝟏(n×k) = n·𝟏(1×k)
            if merged and isinstance(merged[-1], OneMatrix) and isinstance(r, OneMatrix):
                coeff = coeff * merged[-1].shape[1]
                merged[-1] = OneMatrix(merged[-1].shape[0], r.shape[1])
            else:
                merged.append(r)
        if not merged:
            return coeff
        if len(merged) == 1:
            return merged[0] if coeff == 1 else MatMul(coeff, merged[0])
        return MatMul(coeff, *merged).doit(deep=False)
    return e


# ----- the array-level trace ------------------------------------------------------------------
@dataclass
class ArrayCapture:
    """A function traced at array level and differentiated by the graph's reverse mode."""

    name: str
    graph: Any
    names: list[str]
    shapes: list[tuple[int, ...] | None]  # None: a static (non-float) argument
    values: list[Any]
    inputs: dict[int, int]  # graph node -> parameter position
    wrt: tuple[int, ...]
    gradients: list[int]
    output: int
    guards: list[tuple[int, bool]]
    constants: dict[int, str] = field(default_factory=dict)  # array constant node -> name


def _float_array(value: Any) -> bool:
    return isinstance(value, (float, np.ndarray, np.generic)) and not isinstance(value, bool) \
        and np.asarray(value).dtype.kind == "f"


def array_capture(func: Callable, args: Sequence[Any], argnums: int | tuple[int, ...]) -> ArrayCapture:
    """Trace ``func`` at ``args`` at array level and differentiate w.r.t. ``argnums``."""
    from ..arrays.autodiff import vjp
    from ..arrays.graph import ArrayGraph, NotArrayLevel
    from ..arrays.traced import ArrayTraced, array_tracing
    from .capture import _plain, function_name, parameter_names

    args = [_plain(a) for a in args]
    names = parameter_names(func, len(args))
    positions = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    positions = tuple(p % len(args) for p in positions)
    g = ArrayGraph()
    shapes: list[tuple[int, ...] | None] = []
    inputs: dict[int, int] = {}
    traced: list[Any] = []
    try:
        with array_tracing(g):
            for k, (name, value) in enumerate(zip(names, args)):
                if not _float_array(value):
                    shapes.append(None)
                    traced.append(value)
                    continue
                array = np.asarray(value, dtype=np.float64)
                node = g.input(array, name)
                inputs[node] = k
                if k in positions:
                    node = g.alias(node)
                shapes.append(array.shape)
                traced.append(ArrayTraced(g, node))
            for k in positions:
                if shapes[k] is None:
                    raise NoMatrixForm(f"argument {names[k]} is not a float array")
            out = func(*traced)
            if not isinstance(out, ArrayTraced) or out.shape != () or out.dtype.kind != "f":
                raise NoMatrixForm("the function does not return a traced float scalar")
            wrt = [traced[k].node for k in positions]
            grads = vjp(g, [out.node], [g.const(1.0)], wrt)
    except NotArrayLevel as reason:
        raise NoMatrixForm(f"the array-level tracer does not handle {reason}") from None
    cap = ArrayCapture(function_name(func), g, names, shapes, list(args), inputs, positions,
                       list(grads), out.node, list(g.guards))
    cap.constants = _constant_names(func, g)
    return cap


def _constant_names(func: Callable, g: Any) -> dict[int, str]:
    """Array constants named after the function's free or global variables that hold them
    (``lambda w: ((X @ w - y) ** 2).sum()`` with ``X``, ``y`` from the notebook)."""
    candidates: dict[str, np.ndarray] = {}
    code = getattr(func, "__code__", None)
    if code is not None:
        closure = getattr(func, "__closure__", None) or ()
        for name, cell in zip(code.co_freevars, closure):
            try:
                candidates[name] = cell.cell_contents
            except ValueError:  # an empty cell
                pass
        globals_ = getattr(func, "__globals__", {})
        for name in code.co_names:
            if name in globals_:
                candidates.setdefault(name, globals_[name])
    arrays = {n: np.asarray(v, dtype=np.float64) for n, v in candidates.items()
              if isinstance(v, np.ndarray) and v.dtype.kind in "fiu" and 1 <= v.ndim <= 2}
    table: dict[int, str] = {}
    for node, op in enumerate(g.op):
        value = g.values[node]
        if op != "const" or np.ndim(value) == 0 or np.asarray(value).dtype.kind != "f":
            continue
        for name, array in arrays.items():
            if array.shape == np.shape(value) and np.array_equal(array, value):
                table[node] = name
                break
    return table


# ----- array nodes as matrix expressions ------------------------------------------------------
_COMPARISONS = {"gt": (0, 1, 0), "lt": (1, 0, 0), "ge": (0, 1, 1), "le": (1, 0, 1)}


def _elementwise(body_of: Callable[[Any], Any], m: MatrixExpr) -> MatrixExpr:
    d = sympy.Dummy("u", real=True)
    return ElementwiseApplyFunction(sympy.Lambda(d, body_of(d)), m)


def _matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    return (shape[0], 1) if len(shape) == 1 else shape  # type: ignore[return-value]


class _Converter:
    """Node -> SymPy (a scalar expression or a matrix expression), memoised."""

    def __init__(self, cap: ArrayCapture) -> None:
        self.cap, self.g = cap, cap.graph
        self.memo: dict[int, Any] = {}
        self.labels: dict[int, str] = {}
        self.n_constants = 0
        self.int_labels = {int(v): cap.names[k] for k, v in enumerate(cap.values)
                           if isinstance(v, (int, np.integer)) and not isinstance(v, bool)}

    def __call__(self, node: int) -> Any:
        for n in self.g.ancestors([node]):
            if n not in self.memo:
                self.memo[n] = self._convert(n)
        return self.memo[node]

    def shape(self, node: int) -> tuple[int, ...]:
        return self.g.shape(node)

    # operand `node` broadcast to numpy shape `shape`, as a matrix (or a scalar for ())
    def broadcast(self, node: int, shape: tuple[int, ...]) -> Any:
        e, have = self.memo[node], self.shape(node)
        if have == shape or have == ():
            return e
        if len(shape) == 1:  # have == (1,)
            return _mm(OneMatrix(shape[0], 1), e)
        m, n = shape
        if len(have) == 1:
            have = (1, have[0])
            e = Transpose(e) if have != (1, 1) else e
        if have == (1, n) and have != (1, 1):
            return _mm(OneMatrix(m, 1), e)
        if have == (m, 1) and have != (1, 1):
            return _mm(e, OneMatrix(1, n))
        return _mm(OneMatrix(m, 1), e, OneMatrix(1, n))

    def _convert(self, node: int) -> Any:
        g = self.g
        op, args, params = g.op[node], g.args[node], g.params[node]
        shape = self.shape(node)
        if len(shape) > 2:
            raise NoMatrixForm(f"an array of {len(shape)} axes {shape} (matrix notation has two)")
        if op == "input":
            k = self.cap.inputs[node]
            name = self.cap.names[k]
            if shape == ():
                return symbol_for(name, None)
            return MatrixSymbol(name, *_matrix_shape(shape))
        if op == "alias":
            return self.memo[args[0]]
        if op == "const":
            return self._const(node)
        if op in _STRUCTURAL:
            return _STRUCTURAL[op](self, node, args, params, shape)
        return self._pointwise(node, op, args, params, shape)

    def _const(self, node: int) -> Any:
        value = self.g.values[node]
        if np.ndim(value) == 0:
            return number(value)
        array = np.asarray(value)
        if array.dtype.kind != "f":
            raise NoMatrixForm("an integer or boolean array constant")
        if len(array.shape) > 2:
            raise NoMatrixForm(f"a constant array of shape {array.shape}")
        flat = array.ravel()
        if flat.size and (flat == flat[0]).all():
            return _mm(number(flat[0]), OneMatrix(*_matrix_shape(array.shape)))
        hits = np.flatnonzero(flat)
        if array.ndim == 1 and len(hits) == 1:  # c e_k: the cotangent of picking entry k
            k = int(hits[0])
            return _mm(number(flat[k]), OneHot(k, array.shape[0], self.int_labels.get(k, str(k))))
        name = self.cap.constants.get(node)
        if name is None:
            self.n_constants += 1
            name = f"C{self.n_constants}"
        self.labels[node] = name
        return MatrixSymbol(name, *_matrix_shape(array.shape))

    def _pointwise(self, node, op, args, params, shape) -> Any:
        from ..ops import OPS

        if op not in OPS:
            raise NoMatrixForm(f"the operation {op!r}")
        if shape == ():
            return build(op, [self.memo[a] for a in args], params)
        ops = [self.broadcast(a, shape) for a in args]
        scal = [self.shape(a) == () for a in args]
        if op == "add":
            return _madd(*[_mm(o, OneMatrix(*_matrix_shape(shape))) if s else o
                           for o, s in zip(ops, scal)])
        if op == "sub":
            a, b = (_mm(o, OneMatrix(*_matrix_shape(shape))) if s else o
                    for o, s in zip(ops, scal))
            return _madd(a, _mm(-1, b))
        if op == "neg":
            return _mm(-1, ops[0])
        if op == "mul":
            if scal[0] or scal[1]:
                return _mm(ops[0], ops[1])
            return _hadamard(ops[0], ops[1])
        if op == "div":
            a, b = ops
            if scal[1]:
                return a / b if scal[0] else _mm(1 / b, a)
            inverse = HadamardPower(b, -1)
            return _mm(a, inverse) if scal[0] else _hadamard(a, inverse)
        if op == "pow":
            if not scal[1]:
                raise NoMatrixForm("a power with an array exponent")
            exponent = ops[1]
            return ops[0] if exponent == 1 else HadamardPower(ops[0], exponent)
        if op == "ne" and args[0] == args[1]:
            # x != x tests for nan: false at the finite values the formulas are about
            return ZeroMatrix(*_matrix_shape(shape))
        if op == "eq":
            a, b = (_mm(o, OneMatrix(*_matrix_shape(shape))) if s else o
                    for o, s in zip(ops, scal))
            return _elementwise(lambda u: sympy.Piecewise((1, sympy.Eq(u, 0)), (0, True)),
                                _madd(a, _mm(-1, b)))
        if op in ("logical_or", "logical_and"):
            p, q = ops
            if op == "logical_and":
                return _hadamard(p, q)
            if isinstance(q, ZeroMatrix):
                return p
            if isinstance(p, ZeroMatrix):
                return q
            return _madd(p, q, _mm(-1, _hadamard(p, q)))
        if op == "logical_not":
            return _complement(ops[0])
        if op in _COMPARISONS:
            first, second, tie = _COMPARISONS[op]
            a, b = ops[first], ops[second]
            ones = OneMatrix(*_matrix_shape(shape))
            if scal[first]:
                a = _mm(a, ones)
            diff = a if b == 0 else _madd(a, _mm(-1, _mm(b, ones) if scal[second] else b))
            return _elementwise(lambda u: sympy.Heaviside(u, tie), diff)
        if op == "where":
            cond, a, b = ops
            if scal[0]:
                raise NoMatrixForm("where with a scalar condition")
            terms = []
            for branch, is_scalar, mask in ((a, scal[1], cond), (b, scal[2], _complement(cond))):
                if branch == 0:
                    continue
                terms.append(_mm(branch, mask) if is_scalar else _hadamard(mask, branch))
            return _madd(*terms) if terms else ZeroMatrix(*_matrix_shape(shape))
        matrices = [k for k, s in enumerate(scal) if not s]
        if len(matrices) == 1:  # one array operand (maximum(h, 0), clip...): a function of it
            k = matrices[0]
            return _elementwise(lambda u: build(op, [u if j == k else o for j, o in enumerate(ops)],
                                                params), ops[k])
        raise NoMatrixForm(f"the elementwise operation {op!r} of several arrays")


def _mm(*factors: Any) -> Any:
    """A product, canonical (coefficients first) but with its factors as they are: SymPy's
    ``*`` would also move every transpose inside (``(Xw)ᵀ`` -> ``wᵀXᵀ``)."""
    return _fold(MatMul(*factors))


def _madd(*terms: Any) -> Any:
    kept = [t for t in terms if not isinstance(t, ZeroMatrix)]
    if not kept:
        return terms[0]
    return kept[0] if len(kept) == 1 else MatAdd(*kept).doit(deep=False)


def _complement(mask: MatrixExpr) -> MatrixExpr:
    if isinstance(mask, ElementwiseApplyFunction):
        d = mask.function.variables[0]
        return ElementwiseApplyFunction(sympy.Lambda(d, 1 - mask.function.expr), mask.expr)
    return _madd(OneMatrix(*mask.shape), _mm(-1, mask))  # a 0/1 matrix


def _hadamard(a: MatrixExpr, b: MatrixExpr) -> MatrixExpr:
    if isinstance(a, ZeroMatrix) or isinstance(b, ZeroMatrix):
        return ZeroMatrix(*a.shape)
    for x, y in ((a, b), (b, a)):
        s = _ones_scale(x)
        if s is not None:
            return _mm(s, y)
    for x, y in ((a, b), (b, a)):  # ((E𝟏)^∘-1 𝟏ᵀ) ⊙ E with E = exp(S): softmax of each row
        if _is_row_normaliser(x, y):
            return Softmax(y.expr)
    for x, y in ((a, b), (b, a)):  # (c M) ⊙ N = c (M ⊙ N)
        if isinstance(x, MatMul):
            coeff, rest = _split_coeff(x)
            if coeff != 1:
                return _mm(coeff, _hadamard(_product(sympy.S.One, rest), y))
    if a == b:
        return HadamardPower(a, 2)
    return HadamardProduct(a, b)


# structural ops ------------------------------------------------------------------------------
def _sum(cv: _Converter, node, args, params, shape) -> Any:
    (x,) = args
    axes, keepdims = params
    e, have = cv.memo[x], cv.shape(x)
    if len(have) == 1:
        total = _mm(OneMatrix(1, have[0]), e)  # 1×1
        return total if keepdims else _scalar(total)
    m, n = have
    if axes == (0, 1):
        total = _mm(OneMatrix(1, m), e, OneMatrix(n, 1))
        return total if keepdims else _scalar(total)
    if axes == (0,):
        return _mm(OneMatrix(1, m), e) if keepdims else _mm(Transpose(e), OneMatrix(m, 1))
    return _mm(e, OneMatrix(n, 1))  # axis 1: (m,) or (m, 1), a column either way


def _reshape(cv: _Converter, node, args, params, shape) -> Any:
    (x,) = args
    e, have = cv.memo[x], cv.shape(x)
    if shape == ():
        return _scalar(e)
    if have == ():
        return _mm(e, OneMatrix(*_matrix_shape(shape)))
    if _matrix_shape(have) == _matrix_shape(shape):  # (n,) <-> (n, 1)
        return e
    if _matrix_shape(have)[::-1] == _matrix_shape(shape):  # (n,) <-> (1, n)
        return Transpose(e)
    raise NoMatrixForm(f"a reshape from {have} to {shape}")


def _transpose(cv: _Converter, node, args, params, shape) -> Any:
    return Transpose(cv.memo[args[0]])


def _broadcast_to(cv: _Converter, node, args, params, shape) -> Any:
    e = cv.broadcast(args[0], shape)
    if cv.shape(args[0]) == ():
        return _mm(e, OneMatrix(*_matrix_shape(shape)))
    return e


def _index(cv: _Converter, node, args, params, shape) -> Any:
    x = args[0]
    (template,) = params
    have = cv.shape(x)
    if len(have) == 1 and len(template) == 1 and template[0][0] == "i":
        return MatrixElement(cv.memo[x], template[0][1] % have[0], 0)
    raise NoMatrixForm("indexing other than one element of a vector")


def _index_add(cv: _Converter, node, args, params, shape) -> Any:
    ct = args[0]
    template, _ = params
    if len(shape) == 1 and cv.shape(ct) == () and len(template) == 1 and template[0][0] == "i":
        k = template[0][1] % shape[0]
        label = cv.int_labels.get(template[0][1], cv.int_labels.get(k, str(k)))
        return _mm(cv.memo[ct], OneHot(k, shape[0], label))
    raise NoMatrixForm("a scatter other than into one element of a vector")


class _Letters:
    """An einsum operand as a matrix with named row and column letters (None: size 1)."""

    def __init__(self, e: Any, letters: str) -> None:
        self.e = e
        self.row = letters[0] if letters else None
        self.col = letters[1] if len(letters) == 2 else None

    def with_col(self, c: str) -> tuple[Any, str | None]:
        """The matrix oriented with letter ``c`` as its column; returns it and its row letter."""
        if self.col == c:
            return self.e, self.row
        return Transpose(self.e), self.col

    def with_row(self, c: str) -> tuple[Any, str | None]:
        if self.row == c:
            return self.e, self.col
        return Transpose(self.e), self.row


def _orient(e: Any, rows: str | None, cols: str | None, out: str) -> Any:
    want_row = out[0] if out else None
    want_col = out[1] if len(out) == 2 else None
    if (rows, cols) == (want_row, want_col):
        return e
    if (cols, rows) == (want_row, want_col):
        return Transpose(e)
    raise NoMatrixForm(f"an einsum output order {out!r}")


def _einsum(cv: _Converter, node, args, params, shape) -> Any:
    a, b = args
    sa, sb, out = params
    ea, eb = cv.memo[a], cv.memo[b]
    contracted = [c for c in sa if c in sb and c not in out]
    batch = [c for c in sa if c in sb and c in out]
    if not sa or not sb:  # a scalar times an array
        if not sa and not sb:
            return ea * eb
        return _mm(ea, _orient(eb, *_rc(sb), out)) if not sa else _mm(eb, _orient(ea, *_rc(sa), out))
    if len(contracted) == 1 and not batch:
        c = contracted[0]
        left, row = _Letters(ea, sa).with_col(c)
        right, col = _Letters(eb, sb).with_row(c)
        product = _mm(left, right)
        if not out:
            return _scalar(product)
        return _orient(product, row, col, out) if len(out) == 2 else \
            (product if row == out else Transpose(product))
    if not contracted:
        if len(sa) == 1 and len(sb) == 1 and sa != sb:  # an outer product
            return _orient(_mm(ea, Transpose(eb)), sa, sb, out)
        sizes = dict(zip(sa, cv.shape(a))) | dict(zip(sb, cv.shape(b)))
        return _hadamard(_spread(ea, sa, out, sizes), _spread(eb, sb, out, sizes))
    if set(sa) == set(sb) and len(sa) == 2 and not batch:  # sum of A ⊙ B: a trace
        left, _ = _Letters(ea, sa).with_col(sa[1])
        right, _ = _Letters(eb, sb).with_row(sa[1])
        return sympy.Trace(_mm(left, right))
    if len(batch) == 1 and len(contracted) == 1 and len(sa) == len(sb) == 2 and out == batch[0]:
        bl, c = batch[0], contracted[0]
        left = _orient(ea, *_rc(sa), bl + c)
        right = _orient(eb, *_rc(sb), bl + c)
        return _mm(_hadamard(left, right), OneMatrix(right.shape[1], 1))
    raise NoMatrixForm(f"the contraction einsum('{sa},{sb}->{out}')")


def _rc(letters: str) -> tuple[str | None, str | None]:
    return (letters[0] if letters else None, letters[1] if len(letters) == 2 else None)


def _spread(e: Any, letters: str, out: str, sizes: dict[str, int]) -> Any:
    """An operand with a subset of the output's letters, broadcast to the output."""
    if len(letters) == len(out):
        return _orient(e, *_rc(letters), out)
    (c,) = letters
    if len(out) == 1:
        return e
    if out[0] == c:
        return _mm(e, OneMatrix(1, sizes[out[1]]))
    return _mm(OneMatrix(sizes[out[0]], 1), Transpose(e))


def _extreme(cv: _Converter, node, args, params, shape) -> Any:
    (x,) = args
    axes, keepdims = params
    e, have = cv.memo[x], cv.shape(x)
    kind = "max" if cv.g.op[node] == "amax" else "min"
    if len(axes) == len(have):
        value = Extreme(e, kind)
        return _mm(value, OneMatrix(*_matrix_shape(shape))) if shape else value
    if len(have) == 2 and axes == (1,):
        return RowExtreme(e, kind)
    raise NoMatrixForm(f"a {kind} over axis {axes[0]} of a matrix")


_STRUCTURAL = {"amax": _extreme, "amin": _extreme, "sum": _sum, "reshape": _reshape, "transpose": _transpose,
               "broadcast_to": _broadcast_to, "index": _index, "index_add": _index_add,
               "einsum": _einsum}


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
    if not isinstance(e, MatrixExpr) or isinstance(e, (MatrixSymbol, OneMatrix, OneHot)):
        return e
    if _is_entrywise(e) and e.has(HadamardPower) and any(
            isinstance(p, HadamardPower) and p.exp.is_negative for p in sympy.preorder_traversal(e)):
        leaves: dict = {}
        scalar = _to_scalar(e, leaves)
        if sympy.count_ops(scalar) <= MAX_ENTRYWISE_OPS:
            cancelled = sympy.factor_terms(sympy.cancel(scalar))
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
    if not isinstance(e, sympy.Basic) or e.is_Atom or isinstance(e, (MatrixSymbol, OneHot)):
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
    """``𝟏ᵀ softmax(z) = 1``; ``𝟏ᵀ(s 𝟏) = n s``; otherwise the 1×1 product as a scalar."""
    if isinstance(m, MatMul):
        coeff, rest = _split_coeff(m)
        if len(rest) == 2 and isinstance(rest[0], OneMatrix) and isinstance(rest[1], Softmax):
            return coeff
    return _scalar(m)


def _simple(a: Any) -> bool:
    return isinstance(a, (MatrixSymbol, OneMatrix, OneHot)) or \
        (isinstance(a, Transpose) and isinstance(a.arg, (MatrixSymbol, OneHot)))


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


def _product(coeff: Any, factors: list) -> Any:
    if not factors:
        return coeff
    return _fold(MatMul(coeff, *factors)) if coeff != 1 or len(factors) > 1 else factors[0]


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
    sizes = {abs(c) for c, _ in terms}
    if len(sizes) == 1 and all(c.is_Rational for c, _ in terms):
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
    """softmax(S) 𝟏 = 𝟏: each row of a softmax sums to one."""
    if not isinstance(e, MatMul):
        return e
    coeff, rest = _split_coeff(e)
    for i in range(len(rest) - 1):
        if isinstance(rest[i], Softmax) and rest[i].shape[1] > 1 and \
                isinstance(rest[i + 1], OneMatrix):
            ones = OneMatrix(rest[i].shape[0], rest[i + 1].shape[1])
            return _product(coeff, rest[:i] + [ones] + rest[i + 2:])
    return e


def _is_row_normaliser(x: Any, e: Any) -> bool:
    if not (isinstance(e, ElementwiseApplyFunction) and e.shape[1] > 1 and
            e.function.expr == sympy.exp(e.function.variables[0])):
        return False
    if not (isinstance(x, MatMul) and len(x.args) == 2 and isinstance(x.args[1], OneMatrix)):
        return False
    inverse = x.args[0]
    return isinstance(inverse, HadamardPower) and inverse.exp == -1 and \
        inverse.base == _fold(MatMul(e, OneMatrix(e.shape[1], 1)))


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


# ----- results --------------------------------------------------------------------------------
@dataclass
class MatrixForms:
    """The gradient w.r.t. each differentiated argument as a matrix expression."""

    capture: ArrayCapture
    exprs: list[Any]  # tidied SymPy matrix expressions (scalar expressions for 0-d... never)
    raw: list[Any]  # before the matrix rules
    constants: dict[str, str] = field(default_factory=dict)  # symbol name -> where it came from
    #: repeated subexpressions named for display: (name, definition), and the expressions
    #: written with those names (``exprs`` itself has none)
    definitions: list[tuple[Any, Any]] = field(default_factory=list)
    shown: list[Any] = field(default_factory=list)

    def text(self, k: int) -> str:
        from .matrix_view import matrix_text

        return matrix_text(self.exprs[k])

    def latex(self, k: int) -> str:
        from .matrix_view import matrix_latex

        return matrix_latex(self.exprs[k])


def matrix_gradient(func: Callable, args: Sequence[Any],
                    argnums: int | tuple[int, ...] = 0) -> MatrixForms:
    """The gradient of scalar ``func`` at ``args`` w.r.t. ``argnums`` in matrix notation.

    Raises :class:`NoMatrixForm` (with the reason) where the program has none here.
    """
    cap = array_capture(func, args, argnums)
    _check_not_elementwise(cap)
    convert = _Converter(cap)
    raw = [convert(node) for node in cap.gradients]
    size = tree_size(raw)
    if size > MAX_TREE:
        raise NoMatrixForm(f"the matrix formula would have {size:,} terms (above {MAX_TREE:,}: "
                           "a value used many times over, as in a deep composition)")
    exprs = []
    for k, e in zip(cap.wrt, raw):
        e = tidy(e)
        if isinstance(e, MatrixExpr) and e.shape != _matrix_shape(cap.shapes[k]):
            raise NoMatrixForm(f"internal shape mismatch {e.shape} for {cap.shapes[k]}")
        exprs.append(e)
    constants = {name: "a constant array of the function" for node, name in convert.labels.items()
                 if node not in cap.constants}
    constants.update({name: "the array held in the variable of that name"
                      for node, name in convert.labels.items() if node in cap.constants})
    definitions, shown = name_repeated(exprs, set(cap.names) | set(constants))
    return MatrixForms(cap, exprs, raw, constants, definitions, shown)


FORMS = ("auto", "matrix", "elements")


def check_form(form: Any) -> str:
    """``form`` of ``wb.derivative``, or a clear error naming the choices."""
    if not isinstance(form, str) or form not in FORMS:
        raise InvalidFormError(f"derivative: form must be one of {', '.join(map(repr, FORMS))}, "
                               f"got {form!r}")
    return form


def _array_program(args: Sequence[Any]) -> bool:
    from .capture import _plain

    return any(_float_array(v) and np.ndim(v) >= 1 for v in map(_plain, args))


def matrix_attempt(func: Any, args: Sequence[Any], argnums: Any,
                   order: int) -> tuple[MatrixForms | None, str | None]:
    """The matrix forms of a function of arrays, or None and why not (None, None: the function
    is not one of arrays, so no reason is worth a line)."""
    if order != 1 or not callable(func) or isinstance(func, type) or not _array_program(args):
        return None, None
    if isinstance(argnums, bool) or not (isinstance(argnums, int) or (
            isinstance(argnums, tuple) and argnums and
            all(isinstance(a, int) and not isinstance(a, bool) for a in argnums))):
        return None, None
    if any(not -len(args) <= a < len(args) for a in (argnums if isinstance(argnums, tuple)
                                                       else (argnums,))):
        return None, None
    try:
        return matrix_gradient(func, args, argnums), None
    except NoMatrixForm as reason:
        return None, str(reason)
    except Exception:  # noqa: BLE001 - the element path reports the user's error in its words
        return None, None


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


def _check_not_elementwise(cap: ArrayCapture) -> None:
    g = cap.graph
    live = set(g.ancestors([cap.output]))
    count = sum(1 for n in live if g.op[n] == "index" and g.shape(n) == ())
    if count > MAX_ELEMENT_ACCESSES:
        raise NoMatrixForm(f"the program works element by element ({count} single-element "
                           "accesses, e.g. a Python loop over entries)")




__all__ = ["AsScalar", "MatrixForms", "NoMatrixForm", "OneHot", "Softmax", "array_capture",
           "matrix_gradient", "tidy"]


# ----- numeric evaluation (an independent check of the formulas) ------------------------------
def evaluate(expr: Any, values: dict[str, Any]) -> Any:
    """The value of a matrix expression at numpy ``values`` (by parameter and constant name):
    a float for a scalar, a 2-D array for a matrix (vectors are columns).

    >>> X, w = MatrixSymbol("X", 2, 2), MatrixSymbol("w", 2, 1)
    >>> evaluate(X.T * w, {"X": np.eye(2), "w": np.array([1.0, 2.0])}).ravel().tolist()
    [1.0, 2.0]
    """
    if isinstance(expr, MatrixExpr):
        return _evaluate_matrix(expr, values)
    replacements = {}
    for sub in sympy.preorder_traversal(expr):
        if isinstance(sub, (AsScalar, MatrixElement, sympy.Trace, Extreme)):
            replacements[sub] = sympy.Float(_scalar_value(sub, values))
        elif isinstance(sub, sympy.Symbol) and sub.name in values:
            replacements[sub] = sympy.Float(float(values[sub.name]))
    return float(sympy.sympify(expr).xreplace(replacements).evalf())


def _scalar_value(e: Any, values: dict[str, Any]) -> float:
    if isinstance(e, Extreme):
        m = _evaluate_matrix(e.args[0], values)
        return float(m.max() if e.args[1].name == "max" else m.min())
    if isinstance(e, AsScalar):
        return float(_evaluate_matrix(e.args[0], values)[0, 0])
    if isinstance(e, MatrixElement):
        return float(_evaluate_matrix(e.parent, values)[int(e.i), int(e.j)])
    return float(np.trace(_evaluate_matrix(e.arg, values)))


def _column(value: Any, shape: tuple) -> np.ndarray:
    return np.asarray(value, dtype=np.float64).reshape(tuple(int(n) for n in shape))


def _evaluate_matrix(e: Any, values: dict[str, Any]) -> np.ndarray:
    shape = tuple(int(n) for n in e.shape)
    if isinstance(e, MatrixSymbol):
        return _column(values[e.name], shape)
    if isinstance(e, OneMatrix):
        return np.ones(shape)
    if isinstance(e, ZeroMatrix):
        return np.zeros(shape)
    if isinstance(e, Identity):
        return np.eye(shape[0])
    if isinstance(e, OneHot):
        out = np.zeros(shape)
        out[int(e.args[0]), 0] = 1.0
        return out
    if isinstance(e, Transpose):
        return _evaluate_matrix(e.arg, values).T
    if isinstance(e, MatMul):
        scalar = 1.0
        out = None
        for a in e.args:
            if getattr(a, "is_Matrix", False):
                v = _evaluate_matrix(a, values)
                out = v if out is None else out @ v
            else:
                scalar *= evaluate(a, values)
        return scalar * out
    if isinstance(e, MatAdd):
        return sum(_evaluate_matrix(a, values) for a in e.args)
    if isinstance(e, HadamardProduct):
        out = np.ones(shape)
        for a in e.args:
            out = out * _evaluate_matrix(a, values)
        return out
    if isinstance(e, HadamardPower):
        return _evaluate_matrix(e.base, values) ** evaluate(e.exp, values)
    if isinstance(e, Softmax):
        z = _evaluate_matrix(e.args[0], values)
        axis = 0 if z.shape[1] == 1 else 1  # a vector's entries; a matrix's rows
        p = np.exp(z - z.max(axis=axis, keepdims=True))
        return p / p.sum(axis=axis, keepdims=True)
    if isinstance(e, RowExtreme):
        m = _evaluate_matrix(e.args[0], values)
        return (m.max if e.args[1].name == "max" else m.min)(axis=1, keepdims=True)
    if isinstance(e, ElementwiseApplyFunction):
        arg = _evaluate_matrix(e.expr, values)
        var = e.function.variables[0]
        body = e.function.expr
        return np.vectorize(lambda v: float(body.xreplace({var: sympy.Float(v)}).evalf()))(arg)
    raise NoMatrixForm(f"cannot evaluate {type(e).__name__}")


def evaluate_gradient(forms: MatrixForms, k: int, values: dict[str, Any]) -> np.ndarray:
    """The k-th gradient's value at ``values`` in its parameter's numpy shape."""
    shape = forms.capture.shapes[forms.capture.wrt[k]]
    return np.asarray(evaluate(forms.exprs[k], values), dtype=np.float64).reshape(shape)
