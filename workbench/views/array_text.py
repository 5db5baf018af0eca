"""Readable text for the nodes of an array graph: ``x @ W``, ``sum(axis=1)``, ``x[:, 0]``.

:func:`op_text` writes one op applied to operand texts, as a person would write it in numpy
(infix for arithmetic, ``@`` for products that are matrix products, a call with its axis for a
reduction, an index for indexing). Each text has a precedence, so operands are put in brackets
only where needed. The graph view calls it twice: with the operands' names (inputs by parameter
name, intermediate values as ``·``) for a node's label, and with the operands' own formulas for
its expression.

>>> op_text("einsum", [Text("x"), Text("W")], ("ij", "jk", "ik")).text
'x @ W'
>>> op_text("sum", [DOT], ((1,), False)).text, op_text("sum", [Text("h")], ((0, 1), False), ndim=2).text
('sum(axis=1)', 'sum(h)')
>>> op_text("index", [Text("x")], ((("s", None, None, None), ("i", 0)),)).text
'x[:, 0]'
>>> op_text("mul", [op_text("add", [Text("a"), Text("b")], ()), Text("c")], ()).text
'(a + b) * c'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..arrays.graph import code_of

ATOM = 100  # names, calls, indexing: never bracketed


@dataclass(frozen=True)
class Text:
    """A piece of formula and the precedence of its outermost operator."""

    text: str
    precedence: int = ATOM


#: An intermediate value in a label (its own formula is in the node it comes from).
DOT = Text("·")

# infix operators: symbol, precedence (Python's order)
_INFIX = {"add": ("+", 10), "sub": ("-", 10), "mul": ("*", 20), "div": ("/", 20),
          "pow": ("**", 40), "gt": (">", 5), "ge": (">=", 5), "lt": ("<", 5), "le": ("<=", 5),
          "eq": ("==", 5), "ne": ("!=", 5), "logical_and": ("&", 7), "logical_or": ("|", 6)}
_MATMUL = 20


def _wrap(t: Text, at_least: int) -> str:
    return t.text if t.precedence >= at_least else f"({t.text})"


def _call(name: str, operands: Sequence[Text], extras: Sequence[str] = ()) -> Text:
    """``name(a, b, axis=1)``; with one intermediate operand just ``name(axis=1)``."""
    if len(operands) == 1 and operands[0] is DOT:
        return Text(f"{name}({', '.join(extras)})" if extras else name)
    return Text(f"{name}({', '.join([o.text for o in operands] + list(extras))})")


def _axes(axes: tuple[int, ...], keepdims: bool) -> list[str]:
    extras = []
    if axes:
        extras.append(f"axis={axes[0]}" if len(axes) == 1 else f"axis={axes}")
    if keepdims:
        extras.append("keepdims=True")
    return extras


def _index_item(item: tuple, arrays: Sequence[Text]) -> str:
    tag = item[0]
    if tag == "s":
        start, stop, step = ("" if b is None else str(b) for b in item[1:])
        return f"{start}:{stop}" + (f":{step}" if step else "")
    if tag == "i":
        return str(item[1])
    if tag == "n":
        return "None"
    if tag == "e":
        return "..."
    return arrays[item[1]].text


def _einsum(operands: Sequence[Text], params: tuple) -> Text:
    a, b = operands
    sa, sb, out = params
    code = code_of("einsum", ["\x00A", "\x00B"], params)
    form = re.fullmatch(r"\(\x00A(\.T)? @ \x00B(\.T)?\)", code)
    if form:  # a matrix (or vector) product, as numpy's code computes it
        left = _wrap(a, ATOM) + ".T" if form.group(1) else _wrap(a, _MATMUL)
        right = _wrap(b, ATOM) + ".T" if form.group(2) else _wrap(b, _MATMUL + 1)
        return Text(f"{left} @ {right}", _MATMUL)
    return Text(f"einsum('{sa},{sb}->{out}', {a.text}, {b.text})")


def op_text(op: str, operands: Sequence[Text], params: tuple, ndim: int | None = None) -> Text:
    """The text of ``op`` (an array graph op) applied to ``operands``; ``ndim``: the first
    operand's (a reduction over all of its axes needs no ``axis``)."""
    if op in _INFIX and len(operands) == 2:
        symbol, p = _INFIX[op]
        a, b = operands
        if op == "pow":  # right-associative
            return Text(f"{_wrap(a, p + 1)} ** {_wrap(b, p)}", p)
        return Text(f"{_wrap(a, p)} {symbol} {_wrap(b, p + 1)}", p)
    if op == "add":  # n-ary
        return Text(" + ".join(_wrap(o, 10) for o in operands), 10)
    if op == "neg":
        return Text(f"-{_wrap(operands[0], 30)}", 30)
    if op == "logical_not":
        return Text(f"~{_wrap(operands[0], 30)}", 30)
    if op == "einsum":
        return _einsum(operands, params)
    if op in ("sum", "amax", "amin"):
        name = {"sum": "sum", "amax": "max", "amin": "min"}[op]
        axes, keepdims = params
        if ndim is not None and axes == tuple(range(ndim)) and not keepdims:
            axes = ()
        return _call(name, operands, _axes(axes, keepdims))
    if op == "index":
        items = ", ".join(_index_item(item, operands[1:]) for item in params[0])
        return Text(f"{_wrap(operands[0], ATOM)}[{items}]")
    if op == "transpose":
        (perm,) = params
        if perm == (1, 0):
            return Text(f"{_wrap(operands[0], ATOM)}.T")
        return _call("transpose", operands, [str(perm)])
    if op == "reshape":
        return _call("reshape", operands, [str(params[0])])
    if op == "broadcast_to":
        return _call("broadcast_to", operands, [str(params[0])])
    if op == "concatenate":
        return Text(f"concatenate([{', '.join(o.text for o in operands)}], axis={params[0]})")
    if op == "index_add":
        return _call("scatter_add", operands[:1], [f"shape={params[1]}"])
    if op == "cast":
        return _call("astype", operands, [params[0]])
    if op == "clip":
        return _call("clip", operands, [f"{p:g}" for p in params])
    if op == "alias":
        return operands[0]
    return _call(op, operands, [f"{p:g}" if isinstance(p, float) else str(p) for p in params])
