"""``wb.export(target="numpy" | "jax")`` of array functions: the array-level program as a module.

Where the array level traces a function (``workbench.arrays``: array arguments, one graph node
per array operation), the exported gradient is that program, one numpy statement per array
operation (``dot_3 = (X @ w)``), instead of one statement per scalar: the module stays a few
dozen lines for a network and runs at the speed of hand-written numpy. The public contract is
the element export's: ``grad_<name>`` (and ``value_<name>``) taking the float parameters,
input shape checks, a docstring, a module importing only numpy, IEEE results without warnings.
Python control flow traced at array level becomes a check that raises outside the branch taken.
``target="jax"`` prints the same program over ``jax.numpy`` (guards checked under jit too).

Constant arrays the function uses (index arrays, data it closes over) are module-level
literals, up to :data:`MAX_LITERAL_ELEMENTS` elements; the helper ``_scatter_add`` (the adjoint
of gathering with repeated indices) is copied into the module when the program uses it.

:func:`array_export` returns None where the element export must do the work instead: the array
level cannot trace the function, every float argument is a scalar, or an argument is a
container of floats (the element export bakes those in).

>>> import numpy as np, workbench as wb
>>> def loss(w, X, y):
...     return ((X @ w - y) ** 2).mean()
>>> code = wb.export(loss, np.ones(3), np.ones((4, 3)), np.zeros(4))
>>> print(code.source[code.source.index("def grad_loss"):].strip())
def grad_loss(w, X, y):
    \"\"\"The gradient of loss with respect to w: ∇_w loss.\"\"\"
    w = _input(w, "w", (3,))
    X = _input(X, "X", (4, 3))
    y = _input(y, "y", (4,))
    dot_1 = (X @ w)
    sub_2 = (dot_1 - y)
    mul_3 = (2.0 * sub_2)
    mul_4 = (0.25 * mul_3)
    dot_5 = (X.T @ mul_4)
    return dot_5
"""

from __future__ import annotations

import inspect
import io
import math
import textwrap
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import pytree
from ..arrays import rules
from ..arrays.graph import ARRAY_RUNTIME, RULES, ArrayGraph, NotArrayLevel, code_of, literal
from ..arrays.staging import out_of_memory, trace_arrays, wants_arrays
from ..arrays.transforms import gradient_body
from ..errors import BudgetExceededError
from . import Exported
from .program import function_name, identifier
from .python_like import JAX, ExportError

#: Most elements of constant arrays (other than uniform ones such as zeros) a module embeds.
MAX_LITERAL_ELEMENTS = 10_000


@dataclass(frozen=True)
class Spelling:
    """How a target module spells the array program: names of the statements' runtime
    (``ARRAY_RUNTIME``: ``_np.sin`` -> ``np.sin``), imports, helpers, results and guards."""

    target: str
    renamed: dict[str, str]
    header: str
    helpers: str  # always in the module: ``_input`` (and the guard check)
    scatter_add: str  # the ``_scatter_add`` helper, copied in when the program calls it
    decorator: str  # before each function ("" for none)
    scalar: str  # a scalar result
    copies: bool  # results that may share memory with inputs or constants are copied
    array: str  # an array result that must be copied or broadcast to its shape

    def guard(self, test: str, holds: bool, message: list[str]) -> list[str]:
        """Lines that raise ``ValueError(message)`` where ``test`` is not ``holds``."""
        *body, last = message
        if self.target == "jax":  # checked at run time under jit too
            condition = test if holds else f"jnp.logical_not({test})"
            return [f"_check({condition}, (", *body, last + "))"]
        return [f"if {'not ' if holds else ''}{test}:", "    raise ValueError(", *body,
                last + ")"]


_INPUT_HELPER = '''
def _input(value, name, shape):
    """``value`` as a float64 array of ``shape`` (a clear error otherwise)."""
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {array.shape}; this code "
                         "was exported for that shape: export again for another one")
    return array
'''

_JAX_SCATTER_ADD = '''
def _scatter_add(shape, index, values, basic):
    """Zeros of ``shape`` with ``values`` added at ``index`` (repeated indices accumulate)."""
    return jnp.zeros(shape, dtype=jnp.result_type(values)).at[index].add(values)
'''

SPELLINGS = {
    "numpy": Spelling("numpy", {"_np": "np", "_nan": "np.nan", "_inf": "np.inf"},
                      "import numpy as np", _INPUT_HELPER,
                      inspect.getsource(rules._scatter_add), '@np.errstate(all="ignore")',
                      "np.float64({0})", True, "np.array({0}, dtype=np.float64)"),
    # jax arrays are immutable (nothing to copy); constants stay numpy arrays, which jax reads
    # in the precision jax_enable_x64 gives when the function runs.
    "jax": Spelling("jax", {"_np": "jnp", "_nan": "jnp.nan", "_inf": "jnp.inf"},
                    JAX.header + "\nimport numpy as np", JAX.helpers, _JAX_SCATTER_ADD, "",
                    "jnp.asarray({0})", False, "jnp.asarray({0})"),
}

# Ops whose numpy result may share memory with an input, a constant or another result: a
# returned value of theirs is copied (the caller owns what it gets, as from the element export).
_MAY_SHARE = frozenset({"input", "const", "reshape", "transpose", "broadcast_to", "index"})
# Local names: the op's name, but a contraction reads as the product it prints as.
_LOCAL_PREFIX = {"einsum": "dot", "index": "take", "index_add": "scatter",
                 "broadcast_to": "broadcast"}
_GUARD_TEXT_CHARS = 100  # longer conditions are named by their local in the error message


class _ElementExport(Exception):
    """This program is not printed at array level: the element export prints it."""


@dataclass
class ArrayTrace:
    """An array-level trace of a function's gradient (and value) at example arguments."""

    name: str
    graph: ArrayGraph
    params: list[tuple[str, int]]  # float parameters: (name, input node), in argument order
    static: list[str]  # names of the arguments fixed at their example values
    wrt: list[int]  # indices into ``params`` of the differentiated ones
    gradients: list[int]  # one node per differentiated parameter
    value: int
    guards: list[tuple[int, bool]] = field(default_factory=list)
    several: bool = False  # argnums was a tuple: the gradient is a tuple


def array_export(func: Callable, example_args: Sequence[Any], argnums: int | tuple[int, ...],
                 name: str | None = None, with_value: bool = False,
                 target: str = "numpy") -> Exported | None:
    """The ``target`` module (numpy or jax) of ``func``'s gradient at array level, or None
    (use the element export).

    >>> import numpy as np
    >>> array_export(np.sin, (0.5,), 0) is None   # scalar programs keep the element export
    True
    """
    trace = trace_gradient(func, example_args, argnums)
    if trace is None:
        return None
    if name is not None:
        trace.name = name
    try:
        return module(trace, with_value, target)
    except _ElementExport:
        return None


def trace_gradient(func: Callable, example_args: Sequence[Any],
                   argnums: int | tuple[int, ...]) -> ArrayTrace | None:
    """Trace ``func``'s gradient at array level at ``example_args`` (None: it cannot be)."""
    from ..display.capture import _is_float_like, _plain, parameter_names
    from ..display.capture import function_name as display_name
    from ..transforms.captured import restore_global_rng, saved_global_rng
    from ..transforms.grad import normalize_argnums

    if isinstance(func, str) or not callable(func) or not example_args:
        return None  # texts and defaults are scalar programs, printed element by element
    names = parameter_names(func, len(example_args))
    args = []
    for value in map(_plain, example_args):
        if _is_float_like(value):
            args.append(np.asarray(value, dtype=np.float64))
        elif any(_is_float_like(leaf) for leaf in pytree.flatten(value)[0]):
            return None  # a container of floats: the element export decides what it means
        else:
            args.append(value)
    if not wants_arrays(args):
        return None
    leaves, tree = pytree.flatten((tuple(args), {}))
    labels = [n for n, a in zip(names, args) for _ in pytree.flatten(a)[0]]
    several = isinstance(argnums, tuple)
    gradient = gradient_body(func, argnums, has_aux=False)

    def body(args: tuple, kwargs: dict) -> list:
        grads, value, _ = gradient(args, kwargs)
        return [*(grads if several else (grads,)), value]

    saved = saved_global_rng()
    try:
        entry = trace_arrays(body, leaves, leaves, tree, labels)
        positions = normalize_argnums(argnums, len(args), "export")
    except BudgetExceededError:
        raise
    except MemoryError:
        raise out_of_memory("while tracing for export") from None
    except (NotArrayLevel, Exception):  # the element export traces it (or words the error),
        restore_global_rng(saved)  # drawing what the function draws
        return None
    if any(spec.shape is None for spec in entry.out_specs):
        return None
    float_args = [k for k, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    params = [(names[k], node) for k, node in zip(float_args, entry.inputs)]
    return ArrayTrace(display_name(func), entry.graph, params,
                      [names[k] for k in range(len(args)) if k not in float_args],
                      [float_args.index(k) for k in positions], entry.outputs[:-1],
                      entry.outputs[-1], list(entry.guards), several)


# ----- printing -----
def _renamed(expression: str, renamed: dict[str, str]) -> str:
    """``expression`` with the runtime's names as the module spells them (``_np.sin`` ->
    ``np.sin``), renaming whole name tokens only."""
    tokens = list(tokenize.generate_tokens(io.StringIO(expression).readline))
    out, pos = [], 0
    for tok in tokens:
        if tok.type != tokenize.NAME or not tok.string.startswith("_"):
            continue
        if tok.start[0] != 1:
            raise _ElementExport(f"a statement over several lines: {expression!r}")
        if tok.string in renamed:
            out.append(expression[pos:tok.start[1]] + renamed[tok.string])
            pos = tok.end[1]
        elif tok.string in ARRAY_RUNTIME and tok.string != "_scatter_add":
            raise _ElementExport(f"no module spelling for {tok.string}")
    return "".join(out) + expression[pos:]


def _number(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, (int, np.integer)):
        return repr(int(value))
    v = float(value)
    if math.isnan(v):
        return "np.nan"
    if math.isinf(v):
        return "np.inf" if v > 0 else "-np.inf"
    return repr(v)


def _uniform(flat: np.ndarray) -> bool:
    """Every element is the first (bit for bit: -0.0 is not 0.0, every nan is a nan)."""
    if flat.dtype.kind != "f":
        return bool((flat == flat[0]).all())
    same = (flat == flat[0]) | (np.isnan(flat) & np.isnan(flat[0]))
    return bool((same & (np.signbit(flat) == np.signbit(flat[0]))).all())


def _array_literal(value: np.ndarray) -> tuple[str, int]:
    """Python source making ``value`` (and how many literal elements it spells out)."""
    dtype = f"np.{value.dtype.name}" if value.dtype.kind in "fiu" else "bool"
    if value.dtype.kind not in "fiub":
        raise _ElementExport(f"a constant of dtype {value.dtype}")
    flat = value.ravel()
    if not flat.size:
        return f"np.zeros({value.shape}, dtype={dtype})", 0
    if _uniform(flat):
        return f"np.full({value.shape}, {_number(flat[0])}, dtype={dtype})", 0
    items = textwrap.wrap(", ".join(_number(v) for v in flat.tolist()), width=92,
                          break_long_words=False, break_on_hyphens=False)
    body = "\n    ".join(items)
    return f"np.array([\n    {body}\n], dtype={dtype}).reshape({value.shape})", flat.size


def _string_lines(text: str, indent: int, width: int = 88) -> list[str]:
    """``text`` as adjacent string literals of at most about ``width`` characters a line."""
    chunks, line = [], ""
    for word in text.split(" "):
        if line and len(line) + len(word) > width - indent:
            chunks.append(line)
            line = ""
        line += word + " "
    chunks.append(line[:-1])
    return [" " * indent + repr(c) for c in chunks]


class _Module:
    """Names and module-level constants shared by the functions of one exported module."""

    def __init__(self, trace: ArrayTrace, spelling: Spelling) -> None:
        self.spelling = spelling
        self.trace = trace
        self.g = trace.graph
        self.taken: set[str] = set()
        self.names: dict[int, str] = {}  # node -> local name, parameter name or literal
        self.same: dict[int, int] = {}  # node -> the node whose value it is (no statement)
        self.inline: dict[int, str] = {}  # node -> its expression (for guard messages)
        self.statements: dict[int, str] = {}
        self.constants: list[str] = []
        self.literal_elements = 0
        self.largest_literal: tuple[int, tuple] = (0, ())
        for label, node in trace.params:
            name = identifier(label, self.taken)
            self.taken.add(name)
            self.names[node] = self.inline[node] = name
        self.param_names = [self.names[node] for _, node in trace.params]

    def name(self, node: int) -> str:
        """The text a statement uses for ``node`` (call in node order: arguments first)."""
        known = self.names.get(node)
        if known is not None:
            return known
        g = self.g
        op = g.op[node]
        if op in ("alias", "stop_gradient"):  # the same value under another name
            self._same(node, g.args[node][0])
        elif op == "const":
            self.names[node] = self.inline[node] = self._constant(node)
        elif op == "input":  # an input that is not a parameter cannot happen in a grad trace
            raise _ElementExport("an input that is not a parameter")
        else:
            self._statement(node)
        return self.names[node]

    def _same(self, node: int, other: int) -> None:
        """``node`` is ``other``'s value: no statement of its own."""
        self.same[node] = self.same.get(other, other)
        self.names[node] = self.names[other]
        self.inline[node] = self.inline[other]

    def _statement(self, node: int) -> None:
        g = self.g
        op, args = g.op[node], g.args[node]
        texts = [self._as_scalar(a, node) or self.name(a) for a in args]
        if op == "mul" and "1.0" in texts:  # x * 1.0 is x, bit for bit
            other = args[1 - texts.index("1.0")]
            if g.shape(other) == g.shape(node) and g.dtype(other) == g.dtype(node):
                self._same(node, other)
                return
        inlines = [self.inline[a] if t == self.names.get(a) else t for t, a in zip(texts, args)]
        expression = self._spelled(code_of(op, texts, g.params[node]))
        inline = self._spelled(code_of(op, inlines, g.params[node]))
        text = identifier(f"{_LOCAL_PREFIX.get(op, op)}_{len(self.statements) + 1}", self.taken)
        self.taken.add(text)
        self.statements[node] = f"{text} = {expression}"
        self.names[node] = text
        self.inline[node] = inline if len(inline) <= _GUARD_TEXT_CHARS else text

    def _as_scalar(self, arg: int, node: int) -> str | None:
        """A uniform float constant array operand of an elementwise op as a scalar literal,
        where broadcasting the other operands alone gives the result's shape (the autodiff
        broadcasts constant cotangents: ``_c1 * w`` with ``_c1`` all 0.25 reads ``0.25 * w``)."""
        g = self.g
        if g.op[node] in RULES or g.op[arg] != "const" or g.dtype(arg).kind != "f" or \
                not np.ndim(g.values[arg]):
            return None
        flat = np.ravel(g.values[arg])
        if not flat.size or not _uniform(flat):
            return None
        others = [g.shape(a) for a in g.args[node] if a != arg]
        if not others or np.broadcast_shapes(*others) != g.shape(node):
            return None
        return self._spelled(literal(np.float64(flat[0])))

    def _spelled(self, expression: str) -> str:
        return _renamed(expression, self.spelling.renamed)

    def _constant(self, node: int) -> str:
        value = self.g.values[node]
        text = literal(value)
        if text is not None:
            return self._spelled(text)
        source, elements = _array_literal(np.asarray(value))
        self.literal_elements += elements
        self.largest_literal = max(self.largest_literal, (elements, np.shape(value)))
        name = f"_c{len(self.constants) + 1}"
        self.constants.append(f"{name} = {source}")
        return name

    def function(self, name: str, outputs: list[int], shapes: list[tuple], doc: str,
                 several: bool) -> str:
        """One exported function: input checks, one statement per array op, guards, results."""
        g = self.g
        roots = list(outputs) + [node for node, _ in self.trace.guards]
        for node in g.ancestors(roots):  # in node order: arguments before their users
            if g.op[node] != "const":  # constants: where a statement prints them
                self.name(node)
        guard_after: dict[int, list[str]] = {}  # checks right after the value they test
        for node, expected in self.trace.guards:
            target = self.same.get(node, node)
            if g.op[target] == "const":  # decided while tracing: holds for every input
                continue
            if target not in self.statements:
                raise _ElementExport("a guard on a value no statement computes")
            guard_after.setdefault(target, []).extend(self._guard_lines(name, node, expected))
        doc = textwrap.fill(doc, width=92, subsequent_indent="    ", break_long_words=False)
        lines = [self.spelling.decorator] if self.spelling.decorator else []
        lines += [f"def {name}({', '.join(self.param_names)}):", f'    """{doc}"""']
        lines += [f'    {p} = _input({p}, "{p}", {g.shape(node)})'
                  for p, (_, node) in zip(self.param_names, self.trace.params)]
        for node in g.ancestors(roots):
            if node in self.statements:
                lines.append("    " + self.statements[node])
                lines += ["    " + line for line in guard_after.get(node, ())]
        results = []
        returned: set[int] = set()
        for node, shape in zip(outputs, shapes):
            results.append(self._result(node, shape, returned))
        text = ", ".join(results) + ("," if several and len(results) == 1 else "")
        lines.append(f"    return {text}")
        return "\n".join(lines)

    def _result(self, node: int, shape: tuple, returned: set[int]) -> str:
        g, spelling = self.g, self.spelling
        node = self.same.get(node, node)
        text = self.name(node)
        if shape == ():
            return spelling.scalar.format(text)
        shaped = g.shape(node) == shape
        if not shaped:
            text = f"{spelling.renamed['_np']}.broadcast_to({text}, {shape})"
        if spelling.copies:
            fresh = g.op[node] not in _MAY_SHARE and node not in returned and \
                g.dtype(node) == np.float64
            returned.add(node)
            return text if fresh and shaped else spelling.array.format(text)
        return text if shaped and g.op[node] != "const" else spelling.array.format(text)

    def _guard_lines(self, function: str, node: int, expected: bool) -> list[str]:
        message = (f"{function}: the inputs are outside the region this code was traced in "
                   f"({self.inline[node]} was {expected} at the example arguments); export "
                   "again at arguments in the region you need")
        return self.spelling.guard(self.names[node], expected, _string_lines(message, 8))


def module(trace: ArrayTrace, with_value: bool = False, target: str = "numpy") -> Exported:
    """The exported module of an array trace (``grad_<name>``, and ``value_<name>``)."""
    spelling = SPELLINGS[target]
    printer = _Module(trace, spelling)
    g = trace.graph
    fname = function_name(trace.name)
    wrt_names = [printer.param_names[k] for k in trace.wrt]
    single = len(trace.params) == 1
    labels = []
    for k in trace.wrt:
        p, shape = printer.param_names[k], g.shape(trace.params[k][1])
        d = "d" if single else "∂"
        labels.append(f"{d}{trace.name}/{d}{p}" if shape == () else f"∇_{p} {trace.name}")
    functions = [f"grad_{fname}"]
    grad_doc = f"The gradient of {trace.name} with respect to {', '.join(wrt_names)}: " \
        f"{', '.join(labels)}."
    shapes = [g.shape(trace.params[k][1]) for k in trace.wrt]
    sources = [printer.function(f"grad_{fname}", trace.gradients, shapes, grad_doc,
                                trace.several)]
    n_gradient = len(printer.statements)
    if with_value:
        functions.append(f"value_{fname}")
        sources.append(printer.function(f"value_{fname}", [trace.value], [()],
                                        f"The value of {trace.name}.", False))
    if printer.literal_elements > MAX_LITERAL_ELEMENTS:
        count, shape = printer.largest_literal
        raise ExportError(
            f"export: {trace.name} uses constant arrays with {printer.literal_elements:,} "
            f"elements in all (the largest of shape {shape}), above the "
            f"{MAX_LITERAL_ELEMENTS:,} an exported module embeds as literals; pass large data "
            f"as float arguments of {trace.name} (they become parameters of grad_{fname})")
    body = "\n".join(printer.statements.values())
    helpers = [spelling.helpers.strip("\n")]
    if any(tok.type == tokenize.NAME and tok.string == "_scatter_add"
           for tok in tokenize.generate_tokens(io.StringIO(body).readline)):
        helpers.append(spelling.scatter_add.strip("\n"))
    parts = [f'"""{_docstring(trace, printer, n_gradient)}"""', "", spelling.header, "", "",
             "\n\n\n".join(helpers)]
    if printer.constants:
        parts += ["", "", "# Constant arrays of the traced program.", *printer.constants]
    for source in sources:
        parts += ["", "", source]
    return Exported(target, "\n".join(parts) + "\n", functions=functions)


def _docstring(trace: ArrayTrace, printer: _Module, n_gradient: int) -> str:
    from .. import __version__

    g = trace.graph
    wrt = ", ".join(printer.param_names[k] for k in trace.wrt)
    shapes = ", ".join(f"{p} {str(g.shape(node)).replace(' ', '')}"  # (4,3): no line break
                       for p, (_, node) in zip(printer.param_names, trace.params))
    paragraphs = [
        f"Gradient of {trace.name} with respect to {wrt}, exported by workbench {__version__} "
        f"(target {printer.spelling.target!r}).",
        f"Generated by wb.export from an array-level trace at example arguments of shapes "
        f"{shapes}: one {'numpy' if printer.spelling.target == 'numpy' else 'jax.numpy'} "
        f"statement per array operation ({n_gradient} for the gradient), "
        "reverse mode over the traced operations. Non-smooth points follow torch's conventions "
        "(relu'(0) = 0, abs'(0) = 0, ties of max/min split the gradient evenly)."]
    if trace.static:
        paragraphs[-1] += f" Fixed at their example values: {', '.join(trace.static)}."
    if trace.guards:
        valid = ", ".join(f"{printer.inline[n]} is {e}" for n, e in trace.guards)
        paragraphs.append(f"Valid where {valid} (the branch traced); outside, the functions "
                          "raise ValueError.")
    text = "\n\n".join(textwrap.fill(p, width=96, break_long_words=False, break_on_hyphens=False)
                       for p in paragraphs)
    return text.replace("\\", "\\\\").replace('"""', "'''")
