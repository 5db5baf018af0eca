"""``wb.export(target="numpy" | "jax" | "torch")`` of array functions: the array-level program.

Where the array level traces a function (``workbench.arrays``: array arguments, one graph node
per array operation), the exported gradient is that program, one statement per array
operation (``dot_3 = (X @ w)``), instead of one statement per scalar: the module stays a few
dozen lines for a network and runs at the speed of hand-written numpy (or torch). The public
contract is the element export's: ``grad_<name>`` (and ``value_<name>``) taking the function's
arguments, input shape checks, a docstring, a module importing only its library, IEEE results
without warnings. Python control flow traced at array level becomes a check that raises
outside the branch taken (``target="jax"``: checked under jit too).

Arguments may be pytrees (a dict of a torch module's parameters): the exported function takes
the same structure and returns the gradient in it; integer data (class labels) are inputs too
(:mod:`workbench.export.array_trace`). How each target spells the ops:
:mod:`workbench.export.array_spelling`; the torch module computes in its inputs' float dtype.

Constant arrays the function uses (index arrays, data it closes over) are module-level
literals, up to :data:`MAX_LITERAL_ELEMENTS` elements; the helper ``_scatter_add`` (the adjoint
of gathering with repeated indices) is copied into the module when the program uses it.

:func:`array_export` returns None where the element export must do the work instead: the array
level cannot trace the function, every float argument is a scalar, or the target cannot spell
an op of the program.

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

import math
import textwrap
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..arrays.graph import RULES, literal
from . import Exported
from .array_spelling import SPELLINGS, NotPrintable, Spelling
from .array_trace import ArrayTrace, trace_gradient
from .program import function_name, identifier
from .python_like import ExportError

__all__ = ["ArrayTrace", "array_export", "module", "trace_gradient"]

#: Most elements of constant arrays (other than uniform ones such as zeros) a module embeds.
MAX_LITERAL_ELEMENTS = 10_000

# Ops whose numpy result may share memory with an input, a constant or another result: a
# returned value of theirs is copied (the caller owns what it gets, as from the element export).
_MAY_SHARE = frozenset({"input", "const", "reshape", "transpose", "broadcast_to", "index"})
_REDUCTIONS = frozenset({"sum", "amax", "amin"})  # over no axes, torch's print returns x itself
# Local names: the op's name, but a contraction reads as the product it prints as.
_LOCAL_PREFIX = {"einsum": "dot", "index": "take", "index_add": "scatter",
                 "broadcast_to": "broadcast"}
_GUARD_TEXT_CHARS = 100  # longer conditions are named by their local in the error message


def array_export(func: Callable, example_args: Sequence[Any], argnums: int | tuple[int, ...],
                 name: str | None = None, with_value: bool = False, target: str = "numpy",
                 why: list[str] | None = None) -> Exported | None:
    """The ``target`` module (numpy, jax or torch) of ``func``'s gradient at array level, or
    None (use the element export).

    >>> import numpy as np
    >>> array_export(np.sin, (0.5,), 0) is None   # scalar programs keep the element export
    True
    """
    trace = trace_gradient(func, example_args, argnums, why)
    if trace is None:
        return None
    if name is not None:
        trace.name = name
    try:
        return module(trace, with_value, target)
    except NotPrintable as error:
        if why is not None:
            why.append(str(error))
        return None


# ----- printing -----
def _number(value: Any, spelling: Spelling) -> str:
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, (int, np.integer)):
        return repr(int(value))
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        return spelling.literal(literal(np.float64(v)))
    return repr(v)


def _uniform(flat: np.ndarray) -> bool:
    """Every element is the first (bit for bit: -0.0 is not 0.0, every nan is a nan)."""
    if flat.dtype.kind != "f":
        return bool((flat == flat[0]).all())
    same = (flat == flat[0]) | (np.isnan(flat) & np.isnan(flat[0]))
    return bool((same & (np.signbit(flat) == np.signbit(flat[0]))).all())


def _array_literal(value: np.ndarray, spelling: Spelling) -> tuple[str, int]:
    """Python source making ``value`` (and how many literal elements it spells out)."""
    if value.dtype.kind not in "fiub":
        raise NotPrintable(f"a constant of dtype {value.dtype}")
    dtype = value.dtype.name
    flat = value.ravel()
    if not flat.size or _uniform(flat):
        fill = _number(flat[0], spelling) if flat.size else "0"
        return spelling.uniform.format(shape=value.shape, value=fill, dtype=dtype), 0
    items = textwrap.wrap(", ".join(_number(v, spelling) for v in flat.tolist()), width=92,
                          break_long_words=False, break_on_hyphens=False)
    return spelling.constant.format(values="\n    ".join(items), dtype=dtype,
                                    shape=value.shape), flat.size


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


def _split_items(text: str) -> list[str]:
    """The top-level comma-separated items of ``text`` (brackets and quotes respected)."""
    items, depth, quote, start = [], 0, "", 0
    for k, c in enumerate(text):
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            items.append(text[start:k].strip())
            start = k + 1
    last = text[start:].strip()
    return items + ([last] if last else [])


def _kind(dtype: np.dtype) -> str:
    return "i" if dtype.kind == "u" else dtype.kind


def tree_text(tree: Any, texts: Iterator[str]) -> str:
    """Python source building the pytree ``tree`` (from ``pytree.flatten``) around ``texts``.

    >>> from workbench import pytree
    >>> tree_text(pytree.flatten({"w": 1, "b": (2,)})[1], iter(["gw", "gb"]))
    "{'w': gw, 'b': (gb,)}"
    """
    tag = tree[0]
    if tag == "*":
        return next(texts)
    if tag == "None":
        return "None"
    if tag in ("tuple", "list"):
        items = [tree_text(t, texts) for t in tree[1]]
        if tag == "list":
            return "[" + ", ".join(items) + "]"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if tag == "dict" and len(tree) == 3:
        items = [tree_text(t, texts) for t in tree[2]]
        return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(tree[1], items)) + "}"
    raise NotPrintable(f"a result structure {tag}")


class _Module:
    """Names and module-level constants shared by the functions of one exported module."""

    def __init__(self, trace: ArrayTrace, spelling: Spelling) -> None:
        self.spelling = spelling
        self.trace = trace
        self.g = trace.graph
        self.taken: set[str] = {"dtype", *trace.arguments}
        self.names: dict[int, str] = {}  # node -> local name, parameter name or literal
        self.same: dict[int, int] = {}  # node -> the node whose value it is (no statement)
        self.inline: dict[int, str] = {}  # node -> its expression (for guard messages)
        self.statements: dict[int, str] = {}
        self.constants: list[str] = []
        self.literal_elements = 0
        self.largest_literal: tuple[int, tuple] = (0, ())
        for param in trace.params:
            self.taken.add(param.name)
            self.names[param.node] = param.name
            self.inline[param.node] = param.access

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
            raise NotPrintable("an input that is not a parameter")
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
        scalars = [self._as_scalar(a, node) for a in args]
        texts = [s or self.name(a) for s, a in zip(scalars, args)]
        if op == "mul" and "1.0" in texts:  # x * 1.0 is x, bit for bit
            other = args[1 - texts.index("1.0")]
            if g.shape(other) == g.shape(node) and g.dtype(other) == g.dtype(node):
                self._same(node, other)
                return
        # dtype kinds of the operands, a capital letter for a scalar literal
        kinds = [_kind(g.dtype(a)).upper() if s or g.is_const(a) else _kind(g.dtype(a))
                 for s, a in zip(scalars, args)]
        inlines = [self.inline[a] if t == self.names.get(a) else t for t, a in zip(texts, args)]
        result = _kind(g.dtype(node))
        shapes = [g.shape(a) for a in args]
        expression = self.spelling.code(op, texts, g.params[node], kinds, result, shapes)
        inline = self.spelling.code(op, inlines, g.params[node], kinds, result, shapes)
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
        return self.spelling.literal(literal(np.float64(flat[0])))

    def _constant(self, node: int) -> str:
        value = self.g.values[node]
        text = literal(value)
        if text is not None:
            return self.spelling.literal(text)
        source, elements = _array_literal(np.asarray(value), self.spelling)
        self.literal_elements += elements
        self.largest_literal = max(self.largest_literal, (elements, np.shape(value)))
        name = f"_c{len(self.constants) + 1}"
        self.constants.append(f"{name} = {source}")
        if np.asarray(value).dtype.kind == "f":  # torch: in the program's dtype
            return self.spelling.float_constant.format(name)
        return name

    def function(self, name: str, outputs: list[int], result_text: Callable[[list[str]], str],
                 doc: str) -> str:
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
                raise NotPrintable("a guard on a value no statement computes")
            guard_after.setdefault(target, []).extend(self._guard_lines(name, node, expected))
        doc = textwrap.fill(doc, width=92, subsequent_indent="    ", break_long_words=False)
        lines = [self.spelling.decorator] if self.spelling.decorator else []
        lines += [f"def {name}({', '.join(self.trace.arguments)}):", f'    """{doc}"""']
        for p in self.trace.params:
            reader = "_integers" if p.integer else "_input"
            label = f'"{p.access}"' if '"' not in p.access else repr(p.access)
            lines.append(f"    {p.name} = {reader}({p.access}, {label}, {g.shape(p.node)})")
        floats = [p.name for p in self.trace.float_params]
        if self.spelling.dtype_line and floats:
            lines.append("    " + self.spelling.dtype_line.format(", ".join(floats)))
        for node in g.ancestors(roots):
            if node in self.statements:
                lines.append("    " + self.statements[node])
                lines += ["    " + line for line in guard_after.get(node, ())]
        returned: set[int] = set()
        results = [self._result(node, returned) for node in outputs]
        returned_text = result_text(results)
        if len(returned_text) > 88 and returned_text[0] in "{[(":  # one item a line
            items = _split_items(returned_text[1:-1])
            returned_text = returned_text[0] + "\n" + "".join(
                f"        {item},\n" for item in items) + "    " + returned_text[-1]
        lines.append(f"    return {returned_text}")
        return "\n".join(lines)

    def _result(self, node: int, returned: set[int]) -> str:
        g, spelling = self.g, self.spelling
        shape = g.shape(node)
        node = self.same.get(node, node)
        text = self.name(node)
        if shape == ():
            return spelling.scalar.format(text)
        shaped = g.shape(node) == shape
        if not shaped:
            text = f"{spelling.names.get('_np', 'torch')}.broadcast_to({text}, {shape})"
        if spelling.copies:
            shares = g.op[node] in _MAY_SHARE or (g.op[node] in _REDUCTIONS and
                                                  not g.params[node][0])
            fresh = not shares and node not in returned and g.dtype(node) == np.float64
            returned.add(node)
            return text if fresh and shaped else spelling.array.format(text)
        return text if shaped and g.op[node] != "const" else spelling.array.format(text)

    def _guard_lines(self, function: str, node: int, expected: bool) -> list[str]:
        check = self.g.checks.get(node)
        if check is not None:  # a condition of the program's meaning: a class label in range
            message = f"{function}: {check}"
        else:
            message = (f"{function}: the inputs are outside the region this code was traced "
                       f"in ({self.inline[node]} was {expected} at the example arguments); "
                       "export again at arguments in the region you need")
        return self.spelling.guard(self.names[node], expected, _string_lines(message, 8))


def _gradient_text(trace: ArrayTrace) -> Callable[[list[str]], str]:
    """How grad_<name> returns its results: in the differentiated arguments' structures."""
    def text(results: list[str]) -> str:
        it = iter(results)
        trees = [tree_text(tree, it) for tree, _ in trace.gradient_trees]
        if trace.several:
            return "(" + ", ".join(trees) + ("," if len(trees) == 1 else "") + ")"
        return trees[0]

    return text


def module(trace: ArrayTrace, with_value: bool = False, target: str = "numpy") -> Exported:
    """The exported module of an array trace (``grad_<name>``, and ``value_<name>``)."""
    spelling = SPELLINGS[target]
    printer = _Module(trace, spelling)
    fname = function_name(trace.name)
    wrt_names = [trace.arguments[k] for k in trace.wrt]
    single = len(trace.arguments) == 1
    labels = []
    for k, (tree, nodes) in zip(trace.wrt, trace.gradient_trees):
        p = trace.arguments[k]
        d = "d" if single else "∂"
        scalar = tree[0] == "*" and trace.graph.shape(nodes[0]) == ()
        labels.append(f"{d}{trace.name}/{d}{p}" if scalar else f"∇_{p} {trace.name}")
    functions = [f"grad_{fname}"]
    grad_doc = f"The gradient of {trace.name} with respect to {', '.join(wrt_names)}: " \
        f"{', '.join(labels)}."
    outputs = [node for _, nodes in trace.gradient_trees for node in nodes]
    sources = [printer.function(f"grad_{fname}", outputs, _gradient_text(trace), grad_doc)]
    n_gradient = len(printer.statements)
    if with_value:
        functions.append(f"value_{fname}")
        sources.append(printer.function(f"value_{fname}", [trace.value], lambda r: r[0],
                                        f"The value of {trace.name}."))
    if printer.literal_elements > MAX_LITERAL_ELEMENTS:
        count, shape = printer.largest_literal
        raise ExportError(
            f"export: {trace.name} uses constant arrays with {printer.literal_elements:,} "
            f"elements in all (the largest of shape {shape}), above the "
            f"{MAX_LITERAL_ELEMENTS:,} an exported module embeds as literals; pass large data "
            f"as float arguments of {trace.name} (they become parameters of grad_{fname})")
    helpers = [spelling.helpers.strip("\n")]
    if any("_scatter_add(" in statement for statement in printer.statements.values()):
        helpers.append(spelling.scatter_add.strip("\n"))
    parts = [f'"""{_docstring(trace, printer, n_gradient)}"""', "", spelling.header, "", "",
             "\n\n\n".join(helpers)]
    if printer.constants:
        parts += ["", "", "# Constant arrays of the traced program.", *printer.constants]
    for source in sources:
        parts += ["", "", source]
    return Exported(target, "\n".join(parts) + "\n", functions=functions)


_LIBRARY = {"numpy": "numpy", "jax": "jax.numpy", "torch": "torch"}


def _docstring(trace: ArrayTrace, printer: _Module, n_gradient: int) -> str:
    from .. import __version__

    g = trace.graph
    wrt = ", ".join(trace.arguments[k] for k in trace.wrt)
    shapes = ", ".join(f"{p.access} {str(g.shape(p.node)).replace(' ', '')}"  # (4,3): no break
                       for p in trace.params)
    target = printer.spelling.target
    paragraphs = [
        f"Gradient of {trace.name} with respect to {wrt}, exported by workbench {__version__} "
        f"(target {target!r}).",
        f"Generated by wb.export from an array-level trace at example arguments of shapes "
        f"{shapes}: one {_LIBRARY[target]} statement per array operation ({n_gradient} for "
        "the gradient), reverse mode over the traced operations. Non-smooth points follow "
        "torch's conventions (relu'(0) = 0, abs'(0) = 0, ties of max/min split the gradient "
        "evenly)."]
    if target == "torch":
        paragraphs[-1] += " It computes in the dtype of its float inputs (float32 in, float32 out)."
    if trace.static:
        paragraphs[-1] += f" Fixed at their example values: {', '.join(trace.static)}."
    checks = trace.graph.checks
    branches = [(n, e) for n, e in trace.guards if n not in checks]
    if branches:
        valid = ", ".join(f"{printer.inline[n]} is {e}" for n, e in branches)
        paragraphs.append(f"Valid where {valid} (the branch traced); outside, the functions "
                          "raise ValueError.")
    for n, _ in trace.guards:
        if n in checks:
            paragraphs.append(f"Checked at every call (ValueError otherwise): {checks[n]}.")
    text = "\n\n".join(textwrap.fill(p, width=96, break_long_words=False, break_on_hyphens=False)
                       for p in paragraphs)
    return text.replace("\\", "\\\\").replace('"""', "'''")
