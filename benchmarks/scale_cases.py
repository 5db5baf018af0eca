"""The workloads of issue 6 (W1-W5), written once over a namespace of math functions.

Each workload is a function ``f(ns, *args)`` where ``ns`` supplies ``sin``, ``exp``, ``tanh``,
``relu``, ``sum``, ``dot``, ``matmul``...: ``jax.numpy``, SymPy, SymEngine and CasADi each get
their own namespace, so every contender differentiates the same mathematics in its own idiom.
workbench gets the same workloads written as a user writes them, in plain numpy (``np_*``).
The builders (``build_*``) run a contender's whole first-call pipeline and return the compiled
derivative at the case's example arguments; ``result()`` flattens it so contenders compare.

>>> case = CASES[("W2", 5, "grad")]
>>> ours = build_workbench(case).result()
>>> bool(abs(ours[0] - build_casadi(case).result()[0]) < 1e-9)
True
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import workbench as wb

# ----- the workloads -----


def textbook_1(ns, x):
    return ns.sin(x) * ns.exp(x ** 2) / (1 + x ** 2)


def textbook_2(ns, x):
    return x ** x


def textbook_3(ns, x):
    return ns.log(ns.cosh(x))


def textbook_4(ns, x, y):
    return ns.atan(x / y) * ns.sqrt(x ** 2 + y ** 2)


def nested(d: int):
    """``x -> sin(x) * x`` composed ``d`` times."""

    def f(ns, x):
        for _ in range(d):
            x = ns.sin(x) * x
        return x

    return f


def rosenbrock(ns, x):
    return ns.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def relu_loss(ns, w, x, y):
    """Squared error of a one-unit ReLU model: ``(relu(w . x) - y)^2``."""
    return (ns.relu(ns.dot(w, x)) - y) ** 2


def mlp_loss(ns, params, x, y):
    """MLP 2 -> h -> 1 with tanh, squared loss."""
    w1, b1, w2, b2 = params
    hidden = ns.tanh(ns.matmul(w1, x) + b1)
    out = ns.matmul(w2, hidden) + b2
    return ns.sum((out - y) ** 2)


# The same workloads as a user writes them for workbench: plain numpy functions (no namespace
# argument), so the cached call measured is the one users get. The benchmark checks that every
# contender's derivative agrees with workbench's, which also checks the two spellings agree.


def np_textbook_1(x):
    return np.sin(x) * np.exp(x ** 2) / (1 + x ** 2)


def np_textbook_2(x):
    return x ** x


def np_textbook_3(x):
    return np.log(np.cosh(x))


def np_textbook_4(x, y):
    return np.arctan(x / y) * np.sqrt(x ** 2 + y ** 2)


def np_nested(d: int):
    def f(x):
        for _ in range(d):
            x = np.sin(x) * x
        return x

    return f


def np_rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def np_relu_loss(w, x, y):
    return (wb.relu(np.dot(w, x)) - y) ** 2


def np_mlp_loss(params, x, y):
    w1, b1, w2, b2 = params
    hidden = np.tanh(w1 @ x + b1)
    out = w2 @ hidden + b2
    return np.sum((out - y) ** 2)


@dataclass(frozen=True)
class Case:
    """One size of one workload: what to differentiate, where, and how."""

    workload: str
    size: int  # the workload's size parameter (d, n, h; the function number for W1)
    kind: str  # "grad" or "hessian"
    fn: Callable[..., Any]  # fn(ns, *args), for the other contenders
    numpy_fn: Callable[..., Any]  # numpy_fn(*args), for workbench
    args: tuple
    argnums: int | tuple[int, ...] = 0

    @property
    def label(self) -> str:
        names = {"W1": "f", "W2": "d", "W3": "n", "W4": "n", "W5": "h"}
        return f"{self.workload} {names[self.workload]}={self.size}" + (
            " Hessian" if self.kind == "hessian" else "")

    def diff_leaves(self) -> list[int]:
        """Indices (into the flattened argument leaves) of the differentiated leaves."""
        positions = self.argnums if isinstance(self.argnums, tuple) else (self.argnums,)
        leaves, start = [], 0
        for k, arg in enumerate(self.args):
            n = len(arg) if isinstance(arg, tuple) else 1
            if k in positions:
                leaves.extend(range(start, start + n))
            start += n
        return leaves


def _rng():
    return np.random.default_rng(0)


def _w3(n: int, kind: str) -> Case:
    x = _rng().uniform(-1.0, 1.5, n)
    return Case("W3", n, kind, rosenbrock, np_rosenbrock, (x,))


def _w4(n: int) -> Case:
    rng = _rng()
    x = rng.standard_normal(n)
    w = np.abs(rng.standard_normal(n)) * np.sign(x) / n  # w . x > 0: the ReLU is active
    return Case("W4", n, "grad", relu_loss, np_relu_loss, (w, x, 0.3))


def _w5(h: int) -> Case:
    rng = _rng()
    params = (rng.standard_normal((h, 2)), rng.standard_normal(h),
              rng.standard_normal((1, h)) / h, rng.standard_normal(1))
    return Case("W5", h, "grad", mlp_loss, np_mlp_loss, (params, np.array([0.3, -0.7]), np.array([0.5])))


def _all_cases() -> dict[tuple, Case]:
    cases = [
        Case("W1", 1, "grad", textbook_1, np_textbook_1, (0.7,)),
        Case("W1", 2, "grad", textbook_2, np_textbook_2, (1.3,)),
        Case("W1", 3, "grad", textbook_3, np_textbook_3, (0.7,)),
        Case("W1", 4, "grad", textbook_4, np_textbook_4, (0.7, 1.9), (0, 1)),
    ]
    # pi/2 is a fixed point of x sin x with slope 1: values and gradients stay O(1) at any depth.
    cases += [Case("W2", d, "grad", nested(d), np_nested(d), (math.pi / 2,)) for d in (5, 10, 20, 40, 80)]
    for n in (2, 10, 50, 200):
        cases += [_w3(n, "grad"), _w3(n, "hessian")]
    cases += [_w4(n) for n in (5, 100, 1000)]
    cases += [_w5(h) for h in (4, 16, 64)]
    return {(c.workload, c.size, c.kind): c for c in cases}


CASES: dict[tuple, Case] = _all_cases()


def flat_leaves(args: tuple) -> list:
    """The argument leaves in order (a tuple argument is a pytree of arrays)."""
    return [leaf for arg in args for leaf in (arg if isinstance(arg, tuple) else (arg,))]


# ----- namespaces -----


def _namespace(name: str, **functions: Callable) -> types.ModuleType:
    # A module object: workbench's capture fingerprint treats modules as stateless.
    ns = types.ModuleType(name)
    ns.__dict__.update(functions)
    return ns


def _elementwise(fn: Callable) -> Callable:
    """Apply a scalar function to a number or to each element of an object array."""

    def apply(x):
        if isinstance(x, np.ndarray):
            return np.array([fn(v) for v in x.ravel()], dtype=object).reshape(x.shape)
        return fn(x)

    return apply


def _object_ns(name: str, lib, relu: Callable, add_all: Callable) -> types.ModuleType:
    """SymPy/SymEngine: object arrays of scalar expressions; one n-ary Add per sum (linear)."""

    def dot(a, b):
        return add_all(*(np.asarray(a) * np.asarray(b)).ravel())

    def matmul(a, b):
        return np.array([dot(row, b) for row in a], dtype=object)

    funcs = {f: _elementwise(getattr(lib, f)) for f in ("sin", "exp", "log", "cosh", "atan",
                                                       "sqrt", "tanh")}
    return _namespace(name, relu=_elementwise(relu), dot=dot, matmul=matmul,
                      sum=lambda a: add_all(*np.asarray(a).ravel()), **funcs)


def sympy_ns() -> types.ModuleType:
    import sympy

    return _object_ns("sympy_ns", sympy, lambda z: sympy.Max(0, z), sympy.Add)


def symengine_ns() -> types.ModuleType:
    import symengine

    return _object_ns("symengine_ns", symengine, lambda z: symengine.Max(0, z), symengine.Add)


def jax_ns() -> types.ModuleType:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)  # float64 like every other contender
    return _namespace("jax_ns", sin=jnp.sin, exp=jnp.exp, log=jnp.log, cosh=jnp.cosh,
                      atan=jnp.arctan, sqrt=jnp.sqrt, tanh=jnp.tanh, relu=jax.nn.relu,
                      sum=jnp.sum, dot=jnp.dot, matmul=jnp.matmul)


def casadi_ns() -> types.ModuleType:
    import casadi

    return _namespace("casadi_ns", sin=casadi.sin, exp=casadi.exp, log=casadi.log,
                      cosh=casadi.cosh, atan=casadi.atan, sqrt=casadi.sqrt, tanh=casadi.tanh,
                      relu=lambda z: casadi.fmax(z, 0), sum=lambda a: casadi.sum1(a),
                      dot=casadi.dot, matmul=casadi.mtimes)


# ----- builders: the whole first-call pipeline of each contender -----


@dataclass
class Compiled:
    """A contender's compiled derivative at the case's arguments, after its first call."""

    call: Callable[[], Any]  # the cached call, as the library returns it
    flat: Callable[[Any], np.ndarray]  # its result as a flat row-major vector, for comparisons
    size: int | None = None  # program size after CSE (assignments / instructions), if known

    def result(self) -> np.ndarray:
        return self.flat(self.call())


def _flatten(result) -> np.ndarray:
    if isinstance(result, (tuple, list)):
        return np.concatenate([_flatten(r) for r in result]) if result else np.zeros(0)
    return np.asarray(result, dtype=np.float64).ravel()


def fresh_function(fn: Callable) -> Callable:
    """A new function object with ``fn``'s code, globals and closure.

    workbench remembers ``wb.grad(f)`` per function object (so a loop of ``wb.grad(f)(x)`` traces
    once); a first-call measurement must hand it a function it has never seen.
    """
    return types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__,
                              fn.__closure__)


def workbench_transform(case: Case) -> Callable:
    """A fresh (uncached) ``wb.grad``/``wb.hessian`` of the case's numpy function."""
    fn = fresh_function(case.numpy_fn)
    if case.kind == "hessian":
        return wb.hessian(fn)
    return wb.grad(fn, argnums=case.argnums)


def build_workbench(case: Case) -> Compiled:
    """Trace, differentiate and compile (the first call)."""
    transform, args = workbench_transform(case), case.args
    transform(*args)
    return Compiled(lambda: transform(*args), _flatten)


def build_jax(case: Case) -> Compiled:
    import jax

    ns, fn = jax_ns(), case.fn

    def user_function(*args):  # a new function object: jit's cache cannot serve it
        return fn(ns, *args)

    transform = jax.hessian(user_function) if case.kind == "hessian" else jax.grad(
        user_function, argnums=case.argnums)
    compiled = jax.jit(transform)
    args = jax.tree_util.tree_map(jax.numpy.asarray, case.args)
    jax.block_until_ready(compiled(*args))
    return Compiled(lambda: jax.block_until_ready(compiled(*args)),
                    lambda out: _flatten(jax.tree_util.tree_leaves(out)))


def _symbols(case: Case, make: Callable[[str], Any]) -> tuple[tuple, list, list, list]:
    """Symbolic arguments shaped like the case's, the flat symbols, their values, and ``wrt``."""
    sym_args, flat_syms, values, leaf_syms = [], [], [], []
    counter = [0]

    def leaf(value):
        array = np.asarray(value, dtype=np.float64)
        syms = [make(f"s{counter[0] + i}") for i in range(array.size)]
        counter[0] += array.size
        flat_syms.extend(syms)
        values.extend(array.ravel().tolist())
        leaf_syms.append(syms)
        return syms[0] if array.ndim == 0 else np.array(syms, dtype=object).reshape(array.shape)

    for arg in case.args:
        sym_args.append(tuple(leaf(v) for v in arg) if isinstance(arg, tuple) else leaf(arg))
    wrt = [s for i in case.diff_leaves() for s in leaf_syms[i]]
    return tuple(sym_args), flat_syms, values, wrt


def build_sympy(case: Case) -> Compiled:
    """SymPy's naive pipeline: ``diff`` of the whole expression, then ``lambdify(cse=True)``."""
    import sympy

    sym_args, flat_syms, values, wrt = _symbols(case, sympy.Symbol)
    expr = case.fn(sympy_ns(), *sym_args)
    grads = [expr.diff(s) for s in wrt]
    outputs = [g.diff(s) for g in grads for s in wrt] if case.kind == "hessian" else grads
    compiled = sympy.lambdify(flat_syms, outputs, modules="numpy", cse=True)
    compiled(*values)
    return Compiled(lambda: compiled(*values), _flatten)


def build_symengine(case: Case) -> Compiled:
    """SymEngine's ``diff`` and ``Lambdify(cse=True)`` (its C++ core, same pipeline as SymPy)."""
    import symengine

    sym_args, flat_syms, values, wrt = _symbols(case, symengine.Symbol)
    expr = case.fn(symengine_ns(), *sym_args)
    grads = [expr.diff(s) for s in wrt]
    outputs = [g.diff(s) for g in grads for s in wrt] if case.kind == "hessian" else grads
    try:
        compiled = symengine.Lambdify(flat_syms, outputs, cse=True)
    except RuntimeError as error:  # it leaves Derivative(max(0, z), z) unevaluated
        raise NotImplementedError("no derivative of Max (relu)") from error
    point = np.array(values, dtype=np.float64)
    compiled(point)
    return Compiled(lambda: compiled(point), _flatten)


def build_casadi(case: Case) -> Compiled:
    """CasADi: SX expression graph, ``gradient``/``hessian``, a ``Function`` (the speed reference)."""
    import casadi

    flat_syms, values, sym_args, leaf_syms = [], [], [], []
    for k, arg in enumerate(case.args):
        group = []
        for j, value in enumerate(arg if isinstance(arg, tuple) else (arg,)):
            shape = np.shape(value)
            rows, cols = (shape + (1, 1))[:2] if len(shape) < 2 else shape
            sym = casadi.SX.sym(f"a{k}_{j}", rows, cols)
            group.append(sym)
            leaf_syms.append(sym)
            flat_syms.append(sym)
            values.append(np.asarray(value, dtype=np.float64))
        sym_args.append(tuple(group) if isinstance(arg, tuple) else group[0])
    wrt = casadi.vertcat(*[casadi.vec(leaf_syms[i]) for i in case.diff_leaves()])
    expr = case.fn(casadi_ns(), *sym_args)
    output = casadi.hessian(expr, wrt)[0] if case.kind == "hessian" else casadi.gradient(expr, wrt)
    function = casadi.Function("f", flat_syms, [output])
    function(*values)
    order = _casadi_order(case, leaf_syms)
    return Compiled(lambda: function(*values),
                    lambda out: np.asarray(out.full(), dtype=np.float64).ravel(order="F")[order],
                    function.n_instructions())


def _casadi_order(case: Case, leaf_syms: list) -> np.ndarray:
    """Permutation from CasADi's column-major leaf order to numpy's row-major order."""
    if case.kind == "hessian":  # symmetric
        n = leaf_syms[case.diff_leaves()[0]].numel()
        return np.arange(n * n)
    perm, start = [], 0
    for i in case.diff_leaves():
        rows, cols = leaf_syms[i].shape
        perm.extend(start + np.arange(rows * cols).reshape(cols, rows).T.ravel())
        start += rows * cols
    return np.asarray(perm, dtype=np.intp)


BUILDERS: dict[str, Callable[[Case], Compiled]] = {
    "workbench": build_workbench, "SymPy": build_sympy, "SymEngine": build_symengine,
    "CasADi": build_casadi, "jax.jit": build_jax,
}
