"""The one table of scalar operations: layer 1 of workbench.

Every value workbench traces is an array of scalar graph nodes, and every node applies one op of
this table. An entry holds everything the other layers need to know about an op:

* ``py`` / ``np`` -- how to print it as Python code over floats (``math``) and over numpy arrays.
  The numeric kernels used while tracing are compiled from the ``py`` template, so traced values,
  compiled code and guards agree to the last bit;
* ``sympy`` -- how to build its SymPy expression (for display, simplification and export);
* ``partials`` -- its symbolic partial derivatives, written with the graph builder so that they are
  themselves graph nodes (which is what makes ``grad(grad(f))`` work);
* ``numpy_names`` / ``torch_names`` -- the numpy ufuncs and torch functions that mean this op;
* ``convention`` -- what the derivative is at a non-smooth point (checked against torch in tests).

The numeric tape (``workbench.tape``) shares the op *names* with this table and nothing else.

Adding an op means adding one ``Op(...)`` entry here (plus its hand-written VJP in the tape).

>>> OPS["sin"].arity
1
>>> OPS["sin"].kernel(0.0)
0.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# A printer is a format string over the argument names ({0}, {1}, ...) and params ({p0}, ...),
# or a callable (args, params) -> str for n-ary ops.
Printer = str | Callable[[Sequence[str], tuple], str]
# partials(builder, args, out, params) -> one node id (or None for zero) per argument.
Partials = Callable[[Any, tuple[int, ...], int, tuple], Sequence[int | None]]


@dataclass(frozen=True)
class Op:
    """One scalar operation. See the module docstring for what each field is for."""

    name: str
    arity: int | None  # None: n-ary
    py: Printer
    np: Printer
    sympy: Callable[..., Any]
    partials: Partials | None = None  # None: derivative zero (piecewise-constant or boolean op)
    boolean: bool = False  # produces a bool (comparisons, logical ops)
    numpy_names: tuple[str, ...] = ()
    torch_names: tuple[str, ...] = ()
    convention: str = ""
    kernel: Callable[..., Any] = field(default=None, compare=False, repr=False)  # type: ignore[assignment]


def render(printer: Printer, args: Sequence[str], params: tuple = ()) -> str:
    """Print one op application given its argument expressions (names or literals)."""
    if callable(printer):
        return printer(args, params)
    return printer.format(*args, **{f"p{i}": format_float(p) for i, p in enumerate(params)})


def format_float(value: float) -> str:
    """A Python literal for ``value`` that parses back to the same float, parenthesised if negative."""
    if isinstance(value, bool):
        return repr(value)
    value = float(value)
    if math.isnan(value):
        return "_nan"
    if math.isinf(value):
        return "_inf" if value > 0 else "(-_inf)"
    text = repr(value)
    return f"({text})" if value < 0 or text.startswith("-") else text


# Names the generated code and the kernels may use.
def _nan_or(best: Callable[..., float]) -> Callable[..., float]:
    """Python's max/min skip nan depending on argument order; numpy and torch return nan."""

    def reduce(*args: float) -> float:
        for a in args:
            if a != a:
                return a
        return best(args)

    return reduce


RUNTIME: dict[str, Any] = {"_m": math, "_np": np, "_nan": math.nan, "_inf": math.inf,
                           "_max_n": _nan_or(max), "_min_n": _nan_or(min)}


def _join(sep: str) -> Printer:
    return lambda args, params: "(" + sep.join(args) + ")"


def _sympy():
    import sympy  # deferred: import workbench stays cheap

    return sympy


def _sym_fn(name: str) -> Callable[..., Any]:
    def build(*args, params=()):
        return getattr(_sympy(), name)(*args)

    return build


def _custom(name: str) -> Callable[..., Any]:
    def build(*args, params=()):
        from . import sympy_functions

        return getattr(sympy_functions, name)(*args)

    return build


def _unary(name, py, np_, sym, partial, numpy_names=(), torch_names=None, convention=""):
    """An elementwise unary op whose only partial is ``partial(b, x, out)``."""
    return Op(
        name,
        1,
        py,
        np_,
        sym,
        (lambda b, a, o, p: (partial(b, a[0], o),)) if partial else None,
        numpy_names=numpy_names,
        torch_names=(name,) if torch_names is None else torch_names,
        convention=convention,
    )


def _pow_partials(b, a, o, p):
    """d(x**y): torch masks the exponent-zero and base-zero cases to 0 (pow(0, 0)' = 0, not nan)."""
    x, y = a
    if b.is_const(y):
        yv = b.value(y)
        dx = None if yv == 0 else b.mul(y, b.pow(x, b.const(yv - 1)))
    else:
        dx = b.where(b.apply("eq", y, b.const(0.0)), b.const(0.0),
                     b.mul(y, b.pow(x, b.sub(y, b.const(1.0)))))
    dy = None
    if not b.is_const(y):
        base_zero = b.apply("logical_and", b.apply("eq", x, b.const(0.0)), b.apply("ge", y, b.const(0.0)))
        dy = b.where(base_zero, b.const(0.0), b.mul(o, b.apply("log", x)))
    return dx, dy


def _atan2_partials(b, a):
    """d atan2(y, x) = (x, -y) / (x^2 + y^2); 0 at the origin, as torch."""
    y, x = a
    r2 = b.add(b.mul(y, y), b.mul(x, x))
    origin = b.apply("eq", r2, b.const(0.0))
    return (b.where(origin, b.const(0.0), b.div(x, r2)),
            b.where(origin, b.const(0.0), b.neg(b.div(y, r2))))


def _max_n_partials(b, a, o, p):
    """Ties split evenly among all maximal entries, as torch's max()/amax() backward does
    (a nan result sends the gradient to the nan entries)."""
    hits = [b.where(b.apply("logical_or", b.apply("eq", x, o), b.apply("ne", x, x)),
                    b.const(1.0), b.const(0.0)) for x in a]
    count = b.add(*hits)
    return tuple(b.div(h, count) for h in hits)


def _cmp(name, sym_op, numpy_name, torch_names):
    return Op(name, 2, f"({{0}} {sym_op} {{1}})", f"({{0}} {sym_op} {{1}})",
              _relational(sym_op), None, boolean=True, numpy_names=(numpy_name,),
              torch_names=torch_names)


def _relational(sym_op):
    def build(a, b, params=()):
        s = _sympy()
        relation = {">": s.StrictGreaterThan, ">=": s.GreaterThan, "<": s.StrictLessThan,
                    "<=": s.LessThan, "==": s.Eq, "!=": s.Ne}[sym_op]
        # Two numbers (x - x > 0 folds to 0 > 0) compare to true/false: an unevaluated 0 > 0
        # inside a Piecewise makes SymPy raise.
        numbers = getattr(a, "is_Number", False) and getattr(b, "is_Number", False)
        return relation(a, b, evaluate=bool(numbers))

    return build


_MAX2_PY = "({0} if {0} >= {1} else ({1} if {1} > {0} else {0} + {1}))"  # nan propagates, like torch
_MIN2_PY = "({0} if {0} <= {1} else ({1} if {1} < {0} else {0} + {1}))"

OP_LIST: list[Op] = [
    # ----- leaves -----
    Op("input", 0, "", "", None),
    Op("const", 0, "", "", None),
    # A fresh variable equal to its argument: what an inner (nested) transform differentiates.
    Op("alias", 1, "{0}", "{0}", lambda x, params=(): x, lambda b, a, o, p: (b.const(1.0),)),
    # ----- arithmetic -----
    Op("add", None, _join(" + "), _join(" + "), lambda *a, params=(): _sympy().Add(*a),
       lambda b, a, o, p: tuple(b.const(1.0) for _ in a),
       numpy_names=("add",), torch_names=("add", "__add__", "__radd__")),
    Op("sub", 2, "({0} - {1})", "({0} - {1})", lambda x, y, params=(): x - y,
       lambda b, a, o, p: (b.const(1.0), b.const(-1.0)),
       numpy_names=("subtract",), torch_names=("sub", "subtract", "__sub__", "__rsub__")),
    Op("mul", 2, "({0} * {1})", "({0} * {1})", lambda x, y, params=(): x * y,
       lambda b, a, o, p: (a[1], a[0]),
       numpy_names=("multiply",), torch_names=("mul", "multiply", "__mul__", "__rmul__")),
    Op("div", 2, "({0} / {1})", "({0} / {1})", lambda x, y, params=(): x / y,
       lambda b, a, o, p: (b.div(b.const(1.0), a[1]), b.neg(b.div(o, a[1]))),
       numpy_names=("divide", "true_divide"),
       torch_names=("div", "divide", "true_divide", "__truediv__", "__rtruediv__")),
    Op("neg", 1, "(-{0})", "(-{0})", lambda x, params=(): -x,
       lambda b, a, o, p: (b.const(-1.0),),
       numpy_names=("negative",), torch_names=("neg", "negative", "__neg__")),
    Op("pow", 2,
       lambda a, p: f"({a[0]} * {a[0]})" if a[1] == "2.0" else f"_m.pow({a[0]}, {a[1]})",
       "({0} ** {1})", lambda x, y, params=(): x**y, _pow_partials,
       numpy_names=("power", "float_power"), torch_names=("pow", "__pow__", "__rpow__", "float_power"),
       convention="pow(0, y)' in y and pow(x, 0)' in x are 0, as in torch"),
    # Python's, numpy's and torch's float ``%`` and ``//`` (fmod-based: exact for tiny and
    # infinite divisors, where a - floor(a / b) * b is not).
    Op("mod", 2, "({0} % {1})", "_np.remainder({0}, {1})",
       lambda x, y, params=(): _sympy().Mod(x, y),
       lambda b, a, o, p: (b.const(1.0), b.neg(b.apply("floordiv", a[0], a[1]))),
       numpy_names=("remainder", "mod"), torch_names=("remainder", "__mod__", "__rmod__"),
       convention="d(a % b) = (1, -(a // b)), as torch.remainder"),
    Op("floordiv", 2, "({0} // {1})", "_np.floor_divide({0}, {1})",
       lambda x, y, params=(): _sympy().floor(x / y), None,
       numpy_names=("floor_divide",), torch_names=("floor_divide", "__floordiv__", "__rfloordiv__"),
       convention="piecewise constant: derivative 0 (as JAX; torch refuses)"),
    # ----- elementwise functions -----
    _unary("sin", "_m.sin({0})", "_np.sin({0})", _sym_fn("sin"), lambda b, x, o: b.apply("cos", x),
           numpy_names=("sin",)),
    _unary("cos", "_m.cos({0})", "_np.cos({0})", _sym_fn("cos"),
           lambda b, x, o: b.neg(b.apply("sin", x)), numpy_names=("cos",)),
    _unary("tan", "_m.tan({0})", "_np.tan({0})", _sym_fn("tan"),
           lambda b, x, o: b.add(b.const(1.0), b.mul(o, o)), numpy_names=("tan",)),
    _unary("asin", "_m.asin({0})", "_np.arcsin({0})", _sym_fn("asin"),
           lambda b, x, o: b.div(b.const(1.0), b.apply("sqrt", b.sub(b.const(1.0), b.mul(x, x)))),
           numpy_names=("arcsin",), torch_names=("asin", "arcsin")),
    _unary("acos", "_m.acos({0})", "_np.arccos({0})", _sym_fn("acos"),
           lambda b, x, o: b.div(b.const(-1.0), b.apply("sqrt", b.sub(b.const(1.0), b.mul(x, x)))),
           numpy_names=("arccos",), torch_names=("acos", "arccos")),
    _unary("atan", "_m.atan({0})", "_np.arctan({0})", _sym_fn("atan"),
           lambda b, x, o: b.div(b.const(1.0), b.add(b.const(1.0), b.mul(x, x))),
           numpy_names=("arctan",), torch_names=("atan", "arctan")),
    _unary("sinh", "_m.sinh({0})", "_np.sinh({0})", _sym_fn("sinh"),
           lambda b, x, o: b.apply("cosh", x), numpy_names=("sinh",)),
    _unary("cosh", "_m.cosh({0})", "_np.cosh({0})", _sym_fn("cosh"),
           lambda b, x, o: b.apply("sinh", x), numpy_names=("cosh",)),
    _unary("tanh", "_m.tanh({0})", "_np.tanh({0})", _sym_fn("tanh"),
           lambda b, x, o: b.sub(b.const(1.0), b.mul(o, o)), numpy_names=("tanh",)),
    _unary("asinh", "_m.asinh({0})", "_np.arcsinh({0})", _sym_fn("asinh"),
           lambda b, x, o: b.div(b.const(1.0), b.apply("sqrt", b.add(b.mul(x, x), b.const(1.0)))),
           numpy_names=("arcsinh",), torch_names=("asinh", "arcsinh")),
    _unary("acosh", "_m.acosh({0})", "_np.arccosh({0})", _sym_fn("acosh"),
           lambda b, x, o: b.div(b.const(1.0), b.apply("sqrt", b.sub(b.mul(x, x), b.const(1.0)))),
           numpy_names=("arccosh",), torch_names=("acosh", "arccosh")),
    _unary("atanh", "_m.atanh({0})", "_np.arctanh({0})", _sym_fn("atanh"),
           lambda b, x, o: b.div(b.const(1.0), b.sub(b.const(1.0), b.mul(x, x))),
           numpy_names=("arctanh",), torch_names=("atanh", "arctanh")),
    _unary("exp", "_m.exp({0})", "_np.exp({0})", _sym_fn("exp"), lambda b, x, o: o,
           numpy_names=("exp",)),
    _unary("expm1", "_m.expm1({0})", "_np.expm1({0})", lambda x, params=(): _sympy().exp(x) - 1,
           lambda b, x, o: b.add(o, b.const(1.0)), numpy_names=("expm1",)),
    _unary("log", "_m.log({0})", "_np.log({0})", _sym_fn("log"),
           lambda b, x, o: b.div(b.const(1.0), x), numpy_names=("log",)),
    _unary("log1p", "_m.log1p({0})", "_np.log1p({0})", lambda x, params=(): _sympy().log(1 + x),
           lambda b, x, o: b.div(b.const(1.0), b.add(x, b.const(1.0))), numpy_names=("log1p",)),
    _unary("log2", "_m.log2({0})", "_np.log2({0})", lambda x, params=(): _sympy().log(x, 2),
           lambda b, x, o: b.div(b.const(1.0 / math.log(2.0)), x), numpy_names=("log2",)),
    _unary("log10", "_m.log10({0})", "_np.log10({0})", lambda x, params=(): _sympy().log(x, 10),
           lambda b, x, o: b.div(b.const(1.0 / math.log(10.0)), x), numpy_names=("log10",)),
    _unary("sqrt", "_m.sqrt({0})", "_np.sqrt({0})", _sym_fn("sqrt"),
           lambda b, x, o: b.div(b.const(0.5), o), numpy_names=("sqrt",),
           convention="sqrt'(0) = inf, as in torch"),
    _unary("abs", "abs({0})", "_np.abs({0})", _sym_fn("Abs"), lambda b, x, o: b.apply("sign", x),
           numpy_names=("absolute", "fabs"), torch_names=("abs", "absolute", "__abs__"),
           convention="abs'(0) = 0, as in torch"),
    _unary("sign", "(1.0 if {0} > 0.0 else (-1.0 if {0} < 0.0 else {0} - {0}))", "_np.sign({0})",
           _sym_fn("sign"), None, numpy_names=("sign",), torch_names=("sign", "sgn")),
    # copysign: the result has the argument's sign (floor(-0.0) and ceil(-0.5) are -0.0)
    _unary("floor", "_m.copysign(float(_m.floor({0})), {0})", "_np.floor({0})", _sym_fn("floor"),
           None, numpy_names=("floor",)),
    _unary("ceil", "_m.copysign(float(_m.ceil({0})), {0})", "_np.ceil({0})", _sym_fn("ceiling"),
           None, numpy_names=("ceil",)),
    _unary("relu", "({0} if not {0} <= 0.0 else 0.0)", "_np.maximum({0}, 0.0)", _custom("relu"),
           lambda b, x, o: b.apply("step", x), convention="relu'(0) = 0, as in torch"),
    _unary("step", "(0.0 if {0} <= 0.0 else 1.0)", "(1.0 - ({0} <= 0.0))",
           lambda x, params=(): _sympy().Heaviside(x, 0), None,
           convention="the derivative of relu: 1 where x > 0, else 0 (so step(0) = 0)"),
    _unary("sigmoid", "(1.0 / (1.0 + _m.exp(-{0})))", "(1.0 / (1.0 + _np.exp(-{0})))",
           _custom("sigmoid"), lambda b, x, o: b.mul(o, b.sub(b.const(1.0), o))),
    _unary("softplus", "({0} if {0} > 20.0 else _m.log1p(_m.exp({0})))",
           "_np.where({0} > 20.0, {0}, _np.log1p(_np.exp(_np.minimum({0}, 20.0))))",
           _custom("softplus"),
           lambda b, x, o: b.where(b.apply("gt", x, b.const(20.0)), b.const(1.0), b.apply("sigmoid", x)),
           convention="softplus(x) = x for x > 20 (torch's threshold): derivative 1 there, else sigmoid(x)"),
    _unary("stop_gradient", "{0}", "{0}", _custom("stop_gradient"), None, torch_names=("detach",)),
    # ----- binary functions -----
    Op("atan2", 2, "_m.atan2({0}, {1})", "_np.arctan2({0}, {1})", _sym_fn("atan2"),
       lambda b, a, o, p: _atan2_partials(b, a),
       numpy_names=("arctan2",), torch_names=("atan2", "arctan2")),
    Op("maximum", 2, _MAX2_PY, "_np.maximum({0}, {1})", _sym_fn("Max"),
       lambda b, a, o, p: (b.apply("step_tie", a[0], a[1]), b.apply("step_tie", a[1], a[0])),
       numpy_names=("maximum",), torch_names=("maximum", "max"),
       convention="ties split the gradient evenly (0.5 each), as in torch.maximum"),
    Op("minimum", 2, _MIN2_PY, "_np.minimum({0}, {1})", _sym_fn("Min"),
       lambda b, a, o, p: (b.apply("step_tie", a[1], a[0]), b.apply("step_tie", a[0], a[1])),
       numpy_names=("minimum",), torch_names=("minimum", "min"),
       convention="ties split the gradient evenly (0.5 each), as in torch.minimum"),
    Op("step_tie", 2, "(0.0 if {0} < {1} else (0.5 if {0} == {1} else 1.0))",
       "(1.0 - ({0} < {1}) - 0.5 * ({0} == {1}))", _custom("step_tie"), None,
       convention="0 where a < b, 0.5 where a == b, else 1 (nan included, as torch): maximum's derivative"),
    Op("max_n", None, lambda a, p: "_max_n(" + ", ".join(a) + ")",
       lambda a, p: "_np.maximum.reduce([" + ", ".join(a) + "])", _sym_fn("Max"), _max_n_partials,
       convention="ties split the gradient evenly among all maximal entries, as torch's max()"),
    Op("min_n", None, lambda a, p: "_min_n(" + ", ".join(a) + ")",
       lambda a, p: "_np.minimum.reduce([" + ", ".join(a) + "])", _sym_fn("Min"), _max_n_partials,
       convention="ties split the gradient evenly among all minimal entries, as torch's min()"),
    Op("clip", 1, "({p1} if {0} > {p1} else ({p0} if {0} < {p0} else {0}))",
       "_np.clip({0}, {p0}, {p1})",
       lambda x, params=(): _sympy().Min(_sympy().Max(x, params[0]), params[1]),
       lambda b, a, o, p: (b.apply("in_range", a[0], params=p),),
       numpy_names=("clip",), torch_names=("clamp", "clip"),
       convention="gradient 1 on the closed interval [lo, hi], 0 outside, as torch.clamp"),
    Op("in_range", 1, "(1.0 if {p0} <= {0} <= {p1} else 0.0)",
       "_np.where(({0} >= {p0}) & ({0} <= {p1}), 1.0, 0.0)", _custom("in_range"), None),
    Op("where", 3, "({1} if {0} else {2})", "_np.where({0}, {1}, {2})",
       lambda c, x, y, params=(): _sympy().Piecewise((x, c), (y, True)),
       lambda b, a, o, p: (None, b.where(a[0], b.const(1.0), b.const(0.0)),
                           b.where(a[0], b.const(0.0), b.const(1.0))),
       numpy_names=("where",), torch_names=("where",)),
    # ----- comparisons and logic (boolean; no derivative) -----
    _cmp("gt", ">", "greater", ("gt", "greater", "__gt__")),
    _cmp("ge", ">=", "greater_equal", ("ge", "greater_equal", "__ge__")),
    _cmp("lt", "<", "less", ("lt", "less", "__lt__")),
    _cmp("le", "<=", "less_equal", ("le", "less_equal", "__le__")),
    _cmp("eq", "==", "equal", ("eq", "__eq__")),
    _cmp("ne", "!=", "not_equal", ("ne", "not_equal", "__ne__")),
    Op("logical_and", 2, "({0} and {1})", "({0} & {1})",
       lambda x, y, params=(): _sympy().And(x, y), None, boolean=True,
       numpy_names=("logical_and",), torch_names=("logical_and",)),
    Op("logical_or", 2, "({0} or {1})", "({0} | {1})",
       lambda x, y, params=(): _sympy().Or(x, y), None, boolean=True,
       numpy_names=("logical_or",), torch_names=("logical_or",)),
    Op("logical_not", 1, "(not {0})", "(~{0})", lambda x, params=(): _sympy().Not(x), None,
       boolean=True, numpy_names=("logical_not",), torch_names=("logical_not",)),
]

# Ops with no inputs to differentiate that still need a kernel-less treatment.
LEAF_OPS = frozenset({"input", "const"})


_KERNEL_CHUNK = 32  # arguments per compiled kernel of an n-ary op


def _compile_kernel(op: Op) -> Callable[..., Any]:
    """A scalar kernel built from the op's ``py`` printer (so traced values match compiled code).

    Python's math raises where numpy returns inf/nan (log(0), 1/0, exp(1000)); the kernel then
    falls back to the numpy printer, which gives torch's IEEE results.
    """
    if op.name in LEAF_OPS:
        return None  # type: ignore[return-value]

    def make(printer: Printer, n: int, params: tuple):
        names = [f"a{i}" for i in range(n)]
        source = f"lambda {', '.join(names)}: {render(printer, names, params)}"
        return eval(source, RUNTIME)  # our own fixed templates, never user text

    cache: dict[tuple, tuple[Callable, Callable]] = {}

    def kernel(*args, params=()):
        if len(args) > _KERNEL_CHUNK and op.arity is None:
            # n-ary ops (add, max_n, min_n) fold left in chunks: the same floats in the same
            # order as one long expression, without compiling a lambda of thousands of
            # parameters (a sum of ~2000 terms is too deeply nested for Python's compiler).
            acc = kernel(*args[:_KERNEL_CHUNK], params=params)
            for start in range(_KERNEL_CHUNK, len(args), _KERNEL_CHUNK - 1):
                acc = kernel(acc, *args[start:start + _KERNEL_CHUNK - 1], params=params)
            return acc
        key = (len(args), params)
        fns = cache.get(key)
        if fns is None:
            fns = cache[key] = (make(op.py, len(args), params), make(op.np, len(args), params))
        try:
            return fns[0](*args)
        except (ValueError, ZeroDivisionError, OverflowError):
            with np.errstate(all="ignore"):
                result = fns[1](*(np.float64(a) if not isinstance(a, bool) else a for a in args))
            return bool(result) if op.boolean else float(result)

    return kernel


OPS: dict[str, Op] = {}
for _op in OP_LIST:
    object.__setattr__(_op, "kernel", _compile_kernel(_op))
    OPS[_op.name] = _op

# numpy ufunc name -> op name (elementwise ufuncs only; other numpy functions live in the tracer).
NUMPY_UFUNCS: dict[str, str] = {alias: op.name for op in OP_LIST for alias in op.numpy_names}
# torch function or Tensor method name -> op name, for elementwise ops.
TORCH_FUNCTIONS: dict[str, str] = {alias: op.name for op in OP_LIST for alias in op.torch_names}
