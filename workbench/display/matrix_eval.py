"""Numeric values of matrix expressions, walked with numpy (an independent check of the
formulas: the traced program is not used).

>>> import numpy as np
>>> from sympy import MatrixSymbol
>>> X, w = MatrixSymbol("X", 2, 2), MatrixSymbol("w", 2, 1)
>>> evaluate(X.T * w, {"X": np.eye(2), "w": np.array([1.0, 2.0])}).ravel().tolist()
[1.0, 2.0]
"""

from __future__ import annotations

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

from .matrix_algebra import AsScalar, Extreme, NoMatrixForm, OneHot, OneHotRows, RowExtreme, Softmax


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
    if isinstance(e, OneHotRows):
        return np.eye(shape[1])[np.asarray(values[e.args[0].name], dtype=np.int64)]
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


def evaluate_gradient(forms: Any, k: int, values: dict[str, Any]) -> np.ndarray:
    """The k-th gradient's value at ``values`` in its parameter's numpy shape."""
    shape = forms.capture.shapes[forms.capture.wrt[k]]
    return np.asarray(evaluate(forms.exprs[k], values), dtype=np.float64).reshape(shape)
