"""workbench: trace Python/numpy functions, differentiate them symbolically, compile to numpy.

>>> import workbench as wb
>>> import numpy as np
>>> float(wb.grad(lambda x: np.sin(x) * x)(0.0))
0.0
"""

from __future__ import annotations

from . import tape
from .check import check
from .config import config
from .errors import (
    ArgnumsError,
    ArgnumsTypeError,
    BudgetExceededError,
    HasAuxError,
    InputTypeError,
    LeakedTracerError,
    NonScalarOutputError,
    OutputTypeError,
    ShapeError,
    TracedConversionError,
    UnsupportedOperationError,
    WorkbenchError,
)
from .functions import (
    abs,
    acos,
    asin,
    atan,
    atan2,
    clip,
    cos,
    cosh,
    dot,
    exp,
    expm1,
    log,
    log1p,
    matmul,
    maximum,
    mean,
    minimum,
    power,
    relu,
    sigmoid,
    sign,
    sin,
    sinh,
    softplus,
    sqrt,
    square,
    stop_gradient,
    sum,
    supported_functions,
    tan,
    tanh,
    where,
)
from .modes import enable_grad, no_grad
from .transforms.grad import grad, grad_and_value
from .transforms.linearize import hessian, jacfwd, jacrev, jvp, vjp
from .transforms.vmap import vmap

__version__ = "0.1.0"

from .display import derivative, steps, trace  # noqa: E402
from .export import export  # noqa: E402  (the function; the package is workbench.export)

__all__ = [
    "config",
    "ArgnumsError", "ArgnumsTypeError", "BudgetExceededError", "HasAuxError", "InputTypeError",
    "LeakedTracerError", "NonScalarOutputError", "OutputTypeError", "ShapeError",
    "TracedConversionError", "UnsupportedOperationError", "WorkbenchError",
    "abs", "acos", "asin", "atan", "atan2", "clip", "cos", "cosh", "dot", "exp", "expm1", "log",
    "log1p", "matmul", "maximum", "mean", "minimum", "power", "relu", "sigmoid", "sign", "sin",
    "sinh", "softplus", "sqrt", "square", "stop_gradient", "sum", "supported_functions", "tan",
    "tanh", "where",
    "enable_grad", "no_grad", "grad", "grad_and_value",
    "tape", "check",
    "hessian", "jacfwd", "jacrev", "jvp", "vjp", "vmap",
    "trace", "derivative", "steps", "export",
    "explore", "graph", "backprop",
]

# Interactive views load ipywidgets/matplotlib only when first asked for, so that
# ``import workbench`` stays free of widget, plotting and Jupyter modules (DESIGN.md, layer 6).
_LAZY = {
    "explore": ("workbench.widgets", "explore"),
    "graph": ("workbench.views", "graph"),
    "backprop": ("workbench.views", "backprop"),
}
# Importing the submodule workbench.graph (the node graph, above) bound the name ``graph`` to
# that module; drop the binding so that ``wb.graph`` reaches the view through __getattr__.
# ``from workbench.graph import Graph`` is unaffected (it reads sys.modules).
globals().pop("graph", None)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
