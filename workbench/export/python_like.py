"""Printers of a lowered :class:`~workbench.export.program.Program` as a numpy, JAX or torch module.

Each dialect has its own op table (strict: an op missing from it is an :class:`ExportError`,
never a comment in the code). The non-smooth ops keep torch's conventions in every dialect
(``relu'(0) = 0``: ``step`` is ``where(x > 0, 1, 0)``; ties of ``maximum`` split 1/2-1/2), and
numpy code runs under ``np.errstate(all="ignore")`` so that ``log(0)`` and ``1/0`` give IEEE
``-inf``/``inf`` as torch does, instead of warnings.

>>> import numpy as np
>>> from workbench.display.capture import capture
>>> from workbench.export.program import lower
>>> p = lower(capture(lambda x: np.sin(x) * x, (0.5,)))
>>> print(function_source(p, NUMPY, "grad_f", p.gradients, ""))
@np.errstate(all="ignore")
def grad_f(x):
    x = _input(x, "x", ())
    sin_1 = float(np.sin(x))
    cos_2 = float(np.cos(x))
    mul_3 = (x * cos_2)
    add_4 = (sin_1 + mul_3)
    return np.float64(add_4)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import WorkbenchError
from .program import Arg, Assignment, Const, Guard, Output, Program, needed_names


class ExportError(WorkbenchError, ValueError):
    """A traced function uses an op the chosen export target cannot print."""


@dataclass
class Dialect:
    """How one target prints literals, ops, inputs, outputs and guards."""

    name: str
    module: str  # prefix of the array namespace: "np", "jnp", "torch"
    functions: dict[str, str]  # unary elementwise op -> function name in the namespace
    special: dict[str, str | Callable[[list[str], tuple], str]]  # op -> template / printer
    tensor_ops: frozenset[str] = frozenset()  # ops whose literal arguments must be tensors
    header: str = ""
    helpers: str = ""
    unpack: str = ""  # how an array parameter's elements are unpacked
    stack: str = ""  # how an array result is assembled
    empty: str = ""  # how an array result with no elements is made
    errstate: bool = False
    literal_wrap: str = "{0}"  # how a literal is wrapped where a tensor is required
    result_wrap: str = "{0}"  # how the result of a function call is wrapped

    def literal(self, value: float | bool, tensor: bool = False) -> str:
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            text = "True" if value else "False"
        else:
            v = float(value)
            if math.isnan(v):
                text = 'float("nan")'
            elif math.isinf(v):
                text = 'float("inf")' if v > 0 else '(-float("inf"))'
            else:
                text = repr(v)
                text = f"({text})" if text.startswith("-") else text
        return self.literal_wrap.format(text) if tensor else text

    def arg(self, a: Arg, tensor: bool = False) -> str:
        return self.literal(a.value, tensor) if isinstance(a, Const) else a

    def expression(self, step: Assignment) -> str:
        tensor = step.op in self.tensor_ops
        args = [self.arg(a, tensor) for a in step.args]
        m = self.module
        if step.op in self.functions:
            return self.result_wrap.format(f"{m}.{self.functions[step.op]}({args[0]})")
        if step.op not in self.special:
            raise ExportError(f"target {self.name!r} cannot print the op {step.op!r}; "
                              "use another target (numpy supports every op)")
        printer = self.special[step.op]
        if callable(printer):
            return printer(args, step.params)
        params = {f"p{i}": self.literal(float(p)) for i, p in enumerate(step.params)}
        return printer.format(*args, m=m, **params)


def _nary(sep: str) -> Callable[[list[str], tuple], str]:
    return lambda args, params: "(" + sep.join(args) + ")"


_ARITHMETIC: dict[str, str | Callable[[list[str], tuple], str]] = {
    "add": _nary(" + "),
    "sub": "({0} - {1})",
    "mul": "({0} * {1})",
    "div": "({0} / {1})",
    "neg": "(-{0})",
    "gt": "({0} > {1})", "ge": "({0} >= {1})", "lt": "({0} < {1})", "le": "({0} <= {1})",
    "eq": "({0} == {1})", "ne": "({0} != {1})",
    "logical_and": "{m}.logical_and({0}, {1})",
    "logical_or": "{m}.logical_or({0}, {1})",
    "logical_not": "{m}.logical_not({0})",
    "where": "{m}.where({0}, {1}, {2})",
    "step": "{m}.where({0} > 0.0, 1.0, 0.0)",
    "step_tie": "{m}.where({0} > {1}, 1.0, {m}.where({0} == {1}, 0.5, 0.0))",
    "in_range": "{m}.where(({0} >= {p0}) & ({0} <= {p1}), 1.0, 0.0)",
}

_NUMPY_NAMES = {"sin": "sin", "cos": "cos", "tan": "tan", "asin": "arcsin", "acos": "arccos",
                "atan": "arctan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
                "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh", "exp": "exp",
                "expm1": "expm1", "log": "log", "log1p": "log1p", "log2": "log2",
                "log10": "log10", "sqrt": "sqrt", "abs": "abs", "sign": "sign",
                "floor": "floor", "ceil": "ceil"}
_TORCH_NAMES = {**_NUMPY_NAMES, "asin": "asin", "acos": "acos", "atan": "atan",
                "asinh": "asinh", "acosh": "acosh", "atanh": "atanh"}

def _numpy_div(args: list[str], params: tuple) -> str:
    """Python float division where the divisor cannot be 0, numpy's IEEE division where it is."""
    a, b = args
    if _is_nonzero_literal(b):
        return f"({a} / {b})"
    return f"({a} / {b} if {b} else np.divide({a}, {b}))"


def _is_nonzero_literal(text: str) -> bool:
    try:
        return float(text.strip("()")) != 0.0
    except ValueError:
        return False


# The numpy module works on scalars (one local per element): Python floats where arithmetic
# cannot raise, numpy functions for the rest, conditional expressions for the piecewise ops
# (the op table's own ``py`` forms, so nan propagates and ties split exactly as in torch).
NUMPY = Dialect(
    "numpy", "np", _NUMPY_NAMES,
    {**_ARITHMETIC,
     "div": _numpy_div,
     "pow": "float(np.power({0}, {1}))",
     "logical_and": "({0} and {1})",
     "logical_or": "({0} or {1})",
     "logical_not": "(not {0})",
     "where": "({1} if {0} else {2})",
     "step": "(1.0 if {0} > 0.0 else 0.0)",
     "step_tie": "(1.0 if {0} > {1} else (0.5 if {0} == {1} else 0.0))",
     "in_range": "(1.0 if {p0} <= {0} <= {p1} else 0.0)",
     "relu": "({0} if not {0} <= 0.0 else 0.0)",
     "sigmoid": "(1.0 / (1.0 + float(np.exp(-{0}))))",
     "softplus": "({0} if {0} > 20.0 else float(np.log1p(np.exp({0}))))",
     "atan2": "float(np.arctan2({0}, {1}))",
     "maximum": "({0} if {0} >= {1} else ({1} if {1} > {0} else {0} + {1}))",
     "minimum": "({0} if {0} <= {1} else ({1} if {1} < {0} else {0} + {1}))",
     "max_n": lambda a, p: "float(np.max([" + ", ".join(a) + "]))",
     "min_n": lambda a, p: "float(np.min([" + ", ".join(a) + "]))",
     "clip": "({p1} if {0} > {p1} else ({p0} if {0} < {p0} else {0}))",
     "mod": "float(np.remainder({0}, {1}))",
     "floordiv": "float(np.floor_divide({0}, {1}))"},
    header="import numpy as np",
    helpers='''
def _input(value, name, shape):
    """``value`` as a float64 array of ``shape`` (a clear error otherwise); a scalar as a float."""
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {array.shape}; this code "
                         "was exported for that shape: export again for another one")
    return array if shape else float(array)
''',
    unpack="{elements} = {name}.ravel().tolist()",
    stack="np.array([{items}]).reshape({shape})",
    empty="np.zeros({shape})",
    errstate=True,
    result_wrap="float({0})",  # Python floats from here on: their arithmetic is 3x faster
)

JAX = Dialect(
    "jax", "jnp", _NUMPY_NAMES,
    {**_ARITHMETIC,
     "pow": "jnp.power({0}, {1})",
     "relu": "jnp.maximum({0}, 0.0)",
     "sigmoid": "jax.nn.sigmoid({0})",
     "softplus": "jnp.where({0} > 20.0, {0}, jnp.log1p(jnp.exp(jnp.minimum({0}, 20.0))))",
     "atan2": "jnp.arctan2({0}, {1})",
     "maximum": "jnp.maximum({0}, {1})",
     "minimum": "jnp.minimum({0}, {1})",
     "max_n": lambda a, p: "jnp.max(jnp.stack([" + ", ".join(a) + "]))",
     "min_n": lambda a, p: "jnp.min(jnp.stack([" + ", ".join(a) + "]))",
     "clip": "jnp.clip({0}, {p0}, {p1})",
     "mod": "jnp.remainder({0}, {1})",
     "floordiv": "jnp.floor_divide({0}, {1})"},
    tensor_ops=frozenset({"max_n", "min_n"}),
    literal_wrap="jnp.asarray({0})",
    header="import functools\n\nimport jax\nimport jax.numpy as jnp",
    helpers='''
def _input(value, name, shape):
    """``value`` as a jax array of ``shape`` (float64 when jax_enable_x64 is on)."""
    array = jnp.asarray(value, dtype=float)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {array.shape}; this code "
                         "was exported for that shape: export again for another one")
    return array


def _raise_unless(ok, message):
    if not bool(ok):
        raise ValueError(message)


def _check(ok, message):
    """Raise ``ValueError(message)`` where ``ok`` is False (at run time under jit/grad)."""
    try:
        holds = bool(ok)
    except jax.errors.ConcretizationTypeError:  # traced: check when the values exist
        jax.debug.callback(functools.partial(_raise_unless, message=message), ok)
        return
    if not holds:
        raise ValueError(message)
''',
    unpack="{elements} = {name}.ravel()",
    stack="jnp.stack([{items}]).reshape({shape})",
    empty="jnp.zeros({shape})",
)

TORCH = Dialect(
    "torch", "torch", _TORCH_NAMES,
    {**_ARITHMETIC,
     "pow": "torch.pow({0}, {1})",
     "relu": "torch.relu({0})",
     "sigmoid": "torch.sigmoid({0})",
     "softplus": "torch.nn.functional.softplus({0})",
     "atan2": "torch.atan2({0}, {1})",
     "maximum": "torch.maximum({0}, {1})",
     "minimum": "torch.minimum({0}, {1})",
     "max_n": lambda a, p: "torch.stack([" + ", ".join(a) + "]).amax()",
     "min_n": lambda a, p: "torch.stack([" + ", ".join(a) + "]).amin()",
     "clip": "torch.clamp({0}, {p0}, {p1})",
     "mod": "torch.remainder({0}, {1})",
     "floordiv": "torch.div({0}, {1}, rounding_mode='floor')"},
    tensor_ops=frozenset({"pow", "atan2", "maximum", "minimum", "max_n", "min_n", "where", "mod",
                          "floordiv",
                          "step_tie", "logical_and", "logical_or", "logical_not"}),
    literal_wrap="_t({0})",
    header="import torch",
    helpers='''
def _t(value):
    return torch.as_tensor(value, dtype=torch.float64)


def _input(value, name, shape):
    """``value`` as a float64 tensor of ``shape`` (a clear error otherwise)."""
    tensor = torch.as_tensor(value, dtype=torch.float64)
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {tuple(tensor.shape)}; "
                         "this code was exported for that shape: export again for another one")
    return tensor
''',
    unpack="{elements} = {name}.reshape(-1).unbind()",
    stack="torch.stack([{items}]).reshape({shape})",
    empty="torch.zeros({shape}, dtype=torch.float64)",
)

DIALECTS = {"numpy": NUMPY, "jax": JAX, "torch": TORCH}


def _result(dialect: Dialect, out: Output) -> str:
    if out.shape == ():
        item = out.names[0]
        if dialect.name == "numpy":
            return f"np.float64({dialect.arg(item)})"
        return dialect.arg(item, tensor=True) if isinstance(item, Const) else item
    if not out.names:  # an empty array: nothing to stack
        return dialect.empty.format(shape=out.shape)
    items = ", ".join(dialect.arg(a, tensor=dialect.name != "numpy") for a in out.names)
    return dialect.stack.format(items=items, shape=out.shape)


def function_source(program: Program, dialect: Dialect, name: str, outputs: list[Output],
                    doc: str, several: bool = False, branch: bool = False) -> str:
    """One function of the module: input checks, one assignment per node, guards, results.

    ``branch``: one of several traced branches -- inputs arrive checked, and the function
    returns None where its guards fail (the caller tries the next branch).
    """
    lines = [f"def {name}({', '.join(p.name for p in program.params)}):"]
    if doc:
        lines.append(f'    """{doc}"""')
    for p in program.params:
        if not branch:
            lines.append(f'    {p.name} = _input({p.name}, "{p.name}", {p.shape})')
        if p.shape != () and p.elements:  # (an empty array has no elements to unpack)
            elements = ", ".join(p.elements) + ("," if len(p.elements) == 1 else "")
            lines.append("    " + dialect.unpack.format(elements=elements, name=p.name))
    needed = needed_names(program, outputs)
    checks: dict[str, list[str]] = {}  # guard checks, right after the value they test
    produced = {s.name for s in program.assignments}
    body = []
    for g in program.guards:
        lines_g = _guard_lines(dialect, name, g, branch)
        if isinstance(g.name, str) and g.name in produced:
            checks.setdefault(g.name, []).extend(lines_g)
        else:  # a guard on an input or a constant: check first
            body.extend(lines_g)
    for s in program.assignments:
        if s.name in needed:
            body.append(f"{s.name} = {dialect.expression(s)}")
            body.extend(checks.get(s.name, ()))
    lines.extend("    " + b for b in body)
    if dialect.errstate:  # IEEE inf/nan without warnings (cheaper as a decorator than a with)
        lines.insert(0, '@np.errstate(all="ignore")')
    results = [_result(dialect, o) for o in outputs]
    lines.append("    return " + (", ".join(results) + ("," if len(results) == 1 else "")
                                   if several else results[0]))
    return "\n".join(lines)


def _guard_lines(dialect: Dialect, function: str, g: Guard, branch: bool = False) -> list[str]:
    message = (f"{function}: the inputs are outside the region this code was traced in "
               f"({g.text or 'a branch condition'} was {g.expected} at the example "
               "arguments); export again at arguments in the region you need")
    condition = dialect.arg(g.name)
    test = condition if g.expected else f"{dialect.module}.logical_not({condition})"
    if branch:
        return [f"if not {test}:", "    return None"]
    if dialect.name == "jax":
        return [f"_check({test}, {message!r})"]
    return [f"if not {test}:", f"    raise ValueError({message!r})"]


def module_source(programs: list[Program], dialect: Dialect, docstring: str, grad_doc: str,
                  value_doc: str | None) -> str:
    """The whole module: docstring, imports, helpers, ``grad_<name>`` (and ``value_<name>``).

    With several programs (branches traced at several example points), each branch is a
    private function returning None outside its region, and the public function returns the
    first branch's result that is not None (or raises: outside every traced region).
    """
    first = programs[0]
    parts = [f'"""{docstring}"""', "", dialect.header, "", dialect.helpers.strip("\n")]
    kinds = [(f"grad_{first.name}", "gradients", grad_doc, first.several)]
    if value_doc is not None:
        kinds.append((f"value_{first.name}", "value", value_doc, False))
    for name, attr, doc, several in kinds:
        def outputs(p: Program, attr: str = attr) -> list[Output]:
            return p.gradients if attr == "gradients" else [p.value]

        if len(programs) == 1:
            parts += ["", "", function_source(first, dialect, name, outputs(first), doc,
                                              several=several)]
            continue
        if dialect.name == "jax":
            raise ExportError("target 'jax' exports one traced branch (its code must run "
                              "under jit, where Python cannot pick a branch); export without "
                              "also_at, or use numpy/torch/c")
        for k, program in enumerate(programs):
            parts += ["", "", function_source(program, dialect, f"_{name}_branch{k}",
                                              outputs(program), "", several, branch=True)]
        params = ", ".join(p.name for p in first.params)
        lines = [f"def {name}({params}):", f'    """{doc}"""']
        lines += [f'    {p.name} = _input({p.name}, "{p.name}", {p.shape})'
                  for p in first.params]
        branches = ", ".join(f"_{name}_branch{k}" for k in range(len(programs)))
        message = (f"{name}: the inputs are outside every region this code was traced in "
                   "(see the module docstring); export again with an example point in the "
                   "region you need")
        lines += [f"    for branch in ({branches}):", f"        result = branch({params})",
                  "        if result is not None:", "            return result",
                  f"    raise ValueError({message!r})"]
        parts += ["", "", "\n".join(lines)]
    return "\n".join(parts) + "\n"
