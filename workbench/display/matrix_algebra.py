"""The objects and constructors of matrix notation: ``AsScalar`` (a 1×1 product used as a
number), ``Softmax``, ``OneHot`` and ``OneHotRows``, ``Extreme``, and products, sums and
entrywise products that fold constants as a textbook does (``(c·𝟏) ⊙ M = c M``) without
SymPy's habit of moving every transpose inside (``(Xw)ᵀ`` stays as written).

>>> from sympy import MatrixSymbol, OneMatrix
>>> A = MatrixSymbol("A", 2, 2)
>>> _hadamard(_mm(3, OneMatrix(2, 2)), A)
3*A
"""

from __future__ import annotations

from collections.abc import Callable
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

from ..errors import WorkbenchError


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


class OneHotRows(MatrixExpr):
    """The N×C matrix whose row i is ``e_{Y_i}ᵀ`` (``onehot(Y)`` of an integer label vector
    ``Y``, named by ``label``): what gathering ``Z[arange(N), Y]`` sends back."""

    def __new__(cls, label, n, c):
        label = label if isinstance(label, sympy.Symbol) else sympy.Symbol(str(label))
        return super().__new__(cls, label, sympy.Integer(n), sympy.Integer(c))

    @property
    def shape(self):
        return (self.args[1], self.args[2])


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


def _elementwise(body_of: Callable[[Any], Any], m: MatrixExpr) -> MatrixExpr:
    d = sympy.Dummy("u", real=True)
    return ElementwiseApplyFunction(sympy.Lambda(d, body_of(d)), m)


def _matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    return (shape[0], 1) if len(shape) == 1 else shape  # type: ignore[return-value]


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


def _simple(a: Any) -> bool:
    return isinstance(a, (MatrixSymbol, OneMatrix, OneHot, OneHotRows)) or \
        (isinstance(a, Transpose) and isinstance(a.arg, (MatrixSymbol, OneHot, OneHotRows)))


def _product(coeff: Any, factors: list) -> Any:
    if not factors:
        return coeff
    return _fold(MatMul(coeff, *factors)) if coeff != 1 or len(factors) > 1 else factors[0]


def _is_row_normaliser(x: Any, e: Any) -> bool:
    if not (isinstance(e, ElementwiseApplyFunction) and e.shape[1] > 1 and
            e.function.expr == sympy.exp(e.function.variables[0])):
        return False
    if not (isinstance(x, MatMul) and len(x.args) == 2 and isinstance(x.args[1], OneMatrix)):
        return False
    inverse = x.args[0]
    return isinstance(inverse, HadamardPower) and inverse.exp == -1 and \
        inverse.base == _fold(MatMul(e, OneMatrix(e.shape[1], 1)))
