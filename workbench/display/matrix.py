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

A few matrix rules then tidy the result (:func:`~workbench.display.matrix_rules.tidy`):
products by 1 and by broadcast constants fold, transposes of short products move onto the
factors, ``Ax + Aᵀx`` collects to ``(A + Aᵀ)x``, and
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
    MatrixExpr,
    MatrixSymbol,
    OneMatrix,
    Transpose,
    ZeroMatrix,
)
from sympy.matrices.expressions.matexpr import MatrixElement

from ..symbolic.to_sympy import build, number, symbol_for
from .matrix_algebra import (
    AsScalar,
    Extreme,
    InvalidFormError,
    NoMatrixForm,
    OneHot,
    OneHotRows,
    RowExtreme,
    Softmax,
    _complement,
    _elementwise,
    _hadamard,
    _madd,
    _matrix_shape,
    _mm,
    _scalar,
)
from .matrix_eval import evaluate, evaluate_gradient
from .matrix_rules import name_repeated, tidy, tree_size

#: Matrix formulas with more tree nodes than this are not built (shared subexpressions are
#: counted at every use: a deep composition doubles at each level).
MAX_TREE = 2000


#: Scalar element accesses of differentiated data beyond this count mean the program works
#: element by element (a Python loop): the result would be a sum of unit vectors, not a formula.
MAX_ELEMENT_ACCESSES = 2


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


class _Converter:
    """Node -> SymPy (a scalar expression or a matrix expression), memoised."""

    def __init__(self, cap: ArrayCapture) -> None:
        self.cap, self.g = cap, cap.graph
        self.memo: dict[int, Any] = {}
        self.labels: dict[int, str] = {}
        self.n_constants = 0
        self.int_labels = {int(v): cap.names[k] for k, v in enumerate(cap.values)
                           if isinstance(v, (int, np.integer)) and not isinstance(v, bool)}
        self.label_vectors = [(cap.names[k], np.asarray(v)) for k, v in enumerate(cap.values)
                              if isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind in "iu"]

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
        rows = self._one_hot_rows(array)
        if rows is not None:
            return rows
        name = self.cap.constants.get(node)
        if name is None:
            self.n_constants += 1
            name = f"C{self.n_constants}"
        self.labels[node] = name
        return MatrixSymbol(name, *_matrix_shape(array.shape))

    def _one_hot_rows(self, array: np.ndarray) -> Any:
        """``c onehot(Y)`` for a constant with the value c at column Y_i of each row i, for an
        integer label vector Y the function takes (what ``Z[arange(N), Y]`` sends back)."""
        if array.ndim != 2:
            return None
        n, classes = array.shape
        for name, labels in self.label_vectors:
            if labels.shape != (n,) or (labels < 0).any() or (labels >= classes).any():
                continue
            picked = array[np.arange(n), labels]
            rest = array.copy()
            rest[np.arange(n), labels] = 0.0
            if picked[0] != 0 and (picked == picked[0]).all() and not rest.any():
                return _mm(number(picked[0]), OneHotRows(name, n, classes))
        return None

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


def _check_not_elementwise(cap: ArrayCapture) -> None:
    g = cap.graph
    live = set(g.ancestors([cap.output]))
    count = sum(1 for n in live if g.op[n] == "index" and g.shape(n) == ())
    if count > MAX_ELEMENT_ACCESSES:
        raise NoMatrixForm(f"the program works element by element ({count} single-element "
                           "accesses, e.g. a Python loop over entries)")


__all__ = ["AsScalar", "Extreme", "InvalidFormError", "MatrixForms", "NoMatrixForm", "OneHot",
           "RowExtreme", "Softmax", "array_capture", "check_form", "evaluate",
           "evaluate_gradient", "matrix_attempt", "matrix_gradient", "tidy"]
