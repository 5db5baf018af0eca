"""A traced gradient as a target-independent list of assignments, for the export printers.

One assignment per graph node (the graph is already CSE'd, so every shared subexpression is a
named local), inputs unpacked into one local per array element (``x_0``, ``w_1_2``), identities
(``alias``, ``stop_gradient``) resolved away, constants left as literals, and the guards of the
traced branch as (local, expected value, readable condition). Each target prints an
:class:`Assignment` with its own op table; an op a target cannot print is an error there.

>>> import numpy as np
>>> from workbench.display.capture import capture
>>> p = lower(capture(lambda x, y: np.sin(x) * y, (0.5, 2.0), argnums=0))
>>> [(a.name, a.op, a.args) for a in p.assignments]
[('cos_1', 'cos', ('x',)), ('mul_2', 'mul', ('y', 'cos_1'))]
>>> p.gradients[0].names
['mul_2']
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass, field

import numpy as np

from ..display.capture import Capture
from ..ops import OPS

_IDENTITIES = frozenset({"alias", "stop_gradient"})


@dataclass(frozen=True)
class Const:
    """A literal argument (a float or a bool)."""

    value: float | bool


Arg = str | Const


@dataclass
class Assignment:
    """``name = op(*args)`` with static ``params``; ``boolean``: the value is a truth value."""

    name: str
    op: str
    args: tuple[Arg, ...]
    params: tuple
    boolean: bool


@dataclass
class Output:
    """One result array: local names (or literals) in C order, and its shape."""

    names: list[Arg]
    shape: tuple[int, ...]


@dataclass
class Guard:
    """The traced branch holds while local ``name`` equals ``expected``; ``text`` says what."""

    name: Arg
    expected: bool
    text: str


@dataclass
class ExportParam:
    name: str  # a valid identifier
    shape: tuple[int, ...]
    elements: list[str]  # local name of each element, C order


@dataclass
class Program:
    name: str  # the function's name, a valid identifier
    params: list[ExportParam]  # the float parameters (static arguments are baked in)
    wrt: list[int]  # indices into params of the differentiated ones
    assignments: list[Assignment]
    gradients: list[Output]
    value: Output
    guards: list[Guard] = field(default_factory=list)
    several: bool = False  # argnums was a tuple: the gradient is a tuple


def identifier(text: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """``text`` made a valid identifier in every target, not reserved and not in ``taken``
    (underscores appended): a parameter called ``int``, ``sin`` or ``y0`` must not become C
    that calls a parameter, or Python that shadows ``float``.

    >>> [identifier(t) for t in ("x", "int", "sin", "y0", "2x", "a-b", "lambda", "float")]
    ['x', 'int_', 'sin_', 'y0_', '_2x', 'a_b', 'lambda_', 'float_']
    """
    name = re.sub(r"\W", "_", text) or "f"
    if name[0].isdigit():
        name = "_" + name
    while keyword.iskeyword(name) or name in taken or name in _RESERVED:
        name += "_"
    return name


def function_name(text: str) -> str:
    """The exported functions' name part (``grad_<name>``): any valid identifier will do."""
    name = re.sub(r"\W", "_", text) or "f"
    return "_" + name if name[0].isdigit() else name


# Names the printed modules use themselves: array modules, Python builtins the code calls, C
# keywords and <math.h> functions and macros (a parameter must not shadow them), our helpers.
_C_KEYWORDS = """auto break case char const continue default do double else enum extern float for
goto if inline int long register restrict return short signed sizeof static struct switch typedef
union unsigned void volatile while _Bool _Complex _Imaginary bool true false complex imaginary
NULL main""".split()
_LIBM = """acos acosh asin asinh atan atan2 atanh cbrt ceil copysign cos cosh erf erfc exp exp2
expm1 fabs fdim floor fma fmax fmin fmod frexp hypot ilogb ldexp lgamma llrint llround log log10
log1p log2 logb lrint lround modf nan nearbyint nextafter nexttoward pow remainder remquo rint
round scalbln scalbn sin sinh sqrt tan tanh tgamma trunc j0 j1 jn y0 y1 yn gamma drem finite
significand isnan isinf isfinite signbit fpclassify isnormal NAN INFINITY HUGE_VAL errno
M_PI M_E""".split()
_HELPER_NAMES = ["_input", "_check", "_raise_unless", "_t", "wb_max2", "wb_min2", "_nan", "_inf"]
_RESERVED = frozenset({"np", "jnp", "jax", "torch", "math", "out", "result", "value", "grad",
                       "check", "branch", *_HELPER_NAMES, *_C_KEYWORDS, *_LIBM, *dir(builtins)})


def lower(cap: Capture, with_value: bool = False,
          guard_texts: list[str] | None = None) -> Program:
    """The program of ``cap``'s first-order gradient (and value: ``with_value``)."""
    if cap.order != 1:
        raise ValueError("export needs a first-order capture (order=1)")
    graph = cap.graph
    taken: set[str] = set()
    params, local_of = [], {}
    for p in cap.params:
        if p.nodes is None:
            continue
        name = identifier(p.name, taken)
        taken.add(name)
        elements = []
        if p.is_scalar:
            elements.append(name)
            local_of[int(p.nodes)] = name
        else:
            for index in np.ndindex(p.shape):
                element = identifier(f"{name}_{'_'.join(map(str, index))}", taken)
                taken.add(element)
                elements.append(element)
                local_of[int(p.nodes[index])] = element
        params.append(ExportParam(name, p.shape, elements))
    position = {p.name: i for i, p in enumerate(q for q in cap.params if q.nodes is not None)}
    wrt = [position[cap.params[k].name] for k in cap.wrt]

    roots = [int(n) for d in cap.derivatives for n in d.ravel()]
    roots += [int(n) for n in cap.output.ravel()] if with_value else []
    roots += [n for n, _ in cap.guards]
    ref: dict[int, Arg] = {}
    assignments = []
    counter = 0
    for node in graph.ancestors(roots):
        op = graph.op[node]
        if node in local_of:
            ref[node] = local_of[node]
        elif op == "const":
            ref[node] = Const(graph.values[node])
        elif op == "input":  # an input the function did not get as a float parameter
            ref[node] = Const(graph.values[node])
        elif op in _IDENTITIES:
            ref[node] = ref[graph.args[node][0]]
        else:
            counter += 1
            name = identifier(f"{op}_{counter}", taken)
            taken.add(name)
            assignments.append(Assignment(name, op, tuple(ref[a] for a in graph.args[node]),
                                          graph.params[node], OPS[op].boolean))
            ref[node] = name

    def output(nodes: np.ndarray) -> Output:
        return Output([ref[int(n)] for n in nodes.ravel()], tuple(nodes.shape))

    texts = guard_texts or [""] * len(cap.guards)
    guards = [Guard(ref[n], expected, text) for (n, expected), text in zip(cap.guards, texts)]
    value = output(cap.output) if with_value else Output([], ())
    return Program(function_name(cap.name), params, wrt, assignments,
                   [output(d) for d in cap.derivatives], value, guards)


def needed_names(program: Program, outputs: list[Output]) -> set[str]:
    """Names of the assignments the outputs and guards need (dead code left out)."""
    producers = {s.name: s for s in program.assignments}
    stack = [a for o in outputs for a in o.names if isinstance(a, str)]
    stack += [g.name for g in program.guards if isinstance(g.name, str)]
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen or name not in producers:
            continue
        seen.add(name)
        stack.extend(a for a in producers[name].args if isinstance(a, str))
    return seen
