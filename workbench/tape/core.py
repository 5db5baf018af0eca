"""The engine: a Wengert list of numpy values and a reverse pass over it.

A :class:`Tape` is a list of :class:`Entry` rows in the order they were computed. A
:class:`TapeArray` is a numpy value that knows its row. Every op on tape arrays goes through
:func:`primitive`, which computes the value with numpy and appends a row holding the op name,
the rows of its arguments, the argument values and the result. :meth:`Tape.backward` walks the
rows in reverse and applies each op's vector-Jacobian product (``vjps.py``) to the adjoint,
summing what flows into each argument row.

Nesting: a tape array's value may itself be a tape array of an *outer* tape (HIPS autograd's
boxes). :func:`primitive` records on the innermost tape among the operands and computes the
value by recursing on the unwrapped values, so every outer tape records the same op; the VJPs
are written with numpy calls, so an inner backward pass is itself recorded on the outer tapes.
That is how ``wb.tape.grad(wb.tape.grad(f))`` works.

Teaching: inside :func:`recording_steps` (what ``wb.backprop`` uses), new tapes also keep the
backward pass step by step in ``tape.steps``: each processed row with its adjoint and what it
pushed to each argument row. Outside it ``tape.steps`` is None and the pass is the plain loop.

>>> import numpy as np
>>> tape = Tape()
>>> x = tape.input(np.array([1.0, 2.0]), "x")
>>> y = np.sum(np.sin(x) * x)
>>> [e.op for e in tape.entries]
['input', 'sin', 'mul', 'sum']
>>> np.round(tape.backward(y)[0], 4).tolist()
[1.3818, 0.077]
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from ..errors import TracedConversionError
from ..modes import is_grad_enabled
from .forward import FORWARD

# op name -> rule(argnum, g, ans, *args, **params): filled by vjps.py, the table of VJP rules.
VJPS: dict[str, Any] = {}

_tape_ids = itertools.count()

# Read once per new tape: ordinary tapes never pay for step recording (see recording_steps).
_record_steps = False


@contextlib.contextmanager
def recording_steps() -> Iterator[None]:
    """Tapes made inside this block record their backward pass in ``tape.steps``.

    >>> import numpy as np
    >>> with recording_steps():
    ...     tape = Tape()
    >>> x = tape.input(2.0, "x")
    >>> _ = tape.backward(x * x)
    >>> [(c.to, float(c.value), float(c.total)) for c in tape.steps[0].contributions]
    [(0, 2.0, 2.0), (0, 2.0, 4.0)]
    """
    global _record_steps
    previous, _record_steps = _record_steps, True
    try:
        yield
    finally:
        _record_steps = previous


class Contribution(NamedTuple):
    """What one backward step adds to argument ``argnum`` (row ``to``); ``total`` is that row's
    adjoint right after adding it."""

    to: int
    argnum: int
    value: Any
    total: Any


class Step(NamedTuple):
    """One row processed by the backward pass: its (final) adjoint and what it pushed on."""

    node: int
    adjoint: Any
    contributions: list[Contribution]


class Entry:
    """One row of the tape: ``value = op(*args, **params)``; ``parents`` are ``(argnum, row)``."""

    __slots__ = ("index", "op", "parents", "args", "params", "value", "adjoint", "label")

    def __init__(self, index: int, op: str, parents: tuple, args: tuple, params: dict,
                 value: Any, label: str = "") -> None:
        self.index, self.op, self.parents, self.args = index, op, parents, args
        self.params, self.value, self.label = params, value, label
        self.adjoint: Any = None  # filled by Tape.backward

    def __repr__(self) -> str:
        inputs = ", ".join(f"#{p}" for _, p in self.parents)
        return f"Entry(#{self.index} {self.op}({inputs}) shape={np.shape(self.value)})"


def _memory_key(value: Any) -> tuple:
    """Where an array's elements are, and how they are laid out (equal for views alike)."""
    array = np.asarray(value)
    return (array.__array_interface__["data"][0], array.shape, array.strides, array.dtype.str)


class Tape:
    """The rows of one run, in order. Print it, show it in Jupyter, or export it with ``to_json``."""

    def __init__(self) -> None:
        self.id = next(_tape_ids)  # inner (later) tapes have larger ids
        self.entries: list[Entry] = []
        self.inputs: list[int] = []
        self.output: int | None = None
        self.finished = False
        # Set by wb.tape.record: what the run computed, in the arguments' structure.
        self.gradient: Any = None
        self.value: Any = None
        self.aux: Any = None
        # For wb.check: comparisons made on tape values (op, left, right) -- a branch switches
        # where left == right -- and the ways values were cut off the gradient (stop_gradient,
        # no_grad, item()), which finite differences cannot see.
        self.comparisons: list[tuple[str, Any, Any]] = []
        self.cuts: set[str] = set()
        self.torch_style = False  # inputs were torch tensors: x.std() means torch's (unbiased)
        # The backward pass step by step, only inside recording_steps() (for teaching views).
        self.steps: list[Step] | None = [] if _record_steps else None
        # memory key -> (array, name): data arrays the views show by name (see name_data); the
        # array is kept so its memory is not reused while the tape lives.
        self.data_names: dict[tuple, tuple[Any, str]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def input(self, value: Any, label: str = "") -> TapeArray:
        """A new input row holding ``value`` (a float array, or a tape array of an outer tape)."""
        if not isinstance(value, TapeArray):
            value = np.asarray(value)
            if value.dtype.kind != "f":
                value = value.astype(np.float64)
        box = self.record("input", value, (), (), {}, label)
        self.inputs.append(box.entry)
        return box

    def name_data(self, value: Any, name: str) -> None:
        """Show the constant operand ``value`` (a data array the function was given) as ``name``
        in the views, instead of its shape. Known by its memory, so the numpy view torch code
        reaches the tape through (a new array object each time) is found too."""
        self.data_names[_memory_key(value)] = (value, name)

    def data_name(self, value: Any) -> str:
        """The name given to ``value`` by :meth:`name_data`, or ""."""
        found = self.data_names.get(_memory_key(value))
        return found[1] if found is not None else ""

    def record(self, op: str, value: Any, parents: tuple, args: tuple, params: dict,
               label: str = "") -> TapeArray:
        """Append a row and return the tape array that stands for its value."""
        if self.finished:
            raise _finished_error()
        index = len(self.entries)
        self.entries.append(Entry(index, op, parents, args, params, value, label))
        return TapeArray(self, index, value)

    def backward(self, output: TapeArray, seed: Any = None) -> list[Any]:
        """Reverse pass from ``output``: the adjoint of every row (None where nothing flows).

        Adjoints are also stored on the entries (``entry.adjoint``) for display; inside
        :func:`recording_steps` each row reached also appends a :class:`Step` to ``self.steps``.
        """
        entries, steps = self.entries, self.steps
        adjoints: list[Any] = [None] * len(entries)
        adjoints[output.entry] = np.ones(np.shape(output.value)) if seed is None else seed
        for entry in reversed(entries[:output.entry + 1]):
            g = adjoints[entry.index]
            if g is None:
                continue
            entry.adjoint = g
            if steps is not None:
                pushed: list[Contribution] = []
                steps.append(Step(entry.index, g, pushed))
            rule = VJPS.get(entry.op)
            if rule is None:  # piecewise-constant op, or an input: nothing flows further
                continue
            for argnum, parent in entry.parents:
                contribution = rule(argnum, g, entry.value, *entry.args, **entry.params)
                previous = adjoints[parent]
                adjoints[parent] = contribution if previous is None else previous + contribution
                if steps is not None:
                    pushed.append(Contribution(parent, argnum, contribution, adjoints[parent]))
        self.output = output.entry
        self.finished = True
        return adjoints

    # ----- views (see view.py) -----
    def __str__(self) -> str:
        from .view import text_table

        return text_table(self)

    def __repr__(self) -> str:
        return f"<Tape with {len(self.entries)} entries>"

    def _repr_html_(self) -> str:
        from .view import html_table

        return html_table(self)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        from .schema import MIME_TYPE

        return {MIME_TYPE: self.to_json(), "text/plain": str(self), "text/html": self._repr_html_()}

    def to_json(self) -> dict[str, Any]:
        """The graph of this run as a JSON-ready dict; the schema is in ``workbench.tape.schema``."""
        from .view import to_json

        return to_json(self)


def _finished_error() -> TracedConversionError:
    return TracedConversionError(
        "a tape value from a finished wb.tape run was used again; tape values live only while "
        "the function runs. Return them from the function instead of storing them outside it")


def raw(x: Any) -> Any:
    """The plain numpy value under every level of tape arrays (a constant for all tapes)."""
    while type(x) is TapeArray:
        x = x.value
    return x


def primitive(name: str, *operands: Any, **params: Any) -> Any:
    """Apply op ``name``: compute with numpy and record a row on the innermost tape involved."""
    tape = None
    for o in operands:
        if type(o) is TapeArray and (tape is None or o.tape.id > tape.id):
            tape = o.tape
    if tape is None:
        return FORWARD[name](*operands, **params)
    if not is_grad_enabled():  # no_grad: a constant at every level
        tape.cuts.add("no_grad")
        return FORWARD[name](*[raw(o) for o in operands], **params)
    values, parents, nested = [], [], False
    for i, o in enumerate(operands):
        if type(o) is TapeArray:
            if o.tape is tape:
                parents.append((i, o.entry))
                o = o.value
            nested = nested or type(o) is TapeArray
        values.append(o)
    # Nested tapes: the outer ones record the same op on the unwrapped values.
    ans = primitive(name, *values, **params) if nested else FORWARD[name](*values, **params)
    return tape.record(name, ans, tuple(parents), tuple(values), params)


class TapeArray:
    """A numpy value recorded on a tape. Operators, numpy functions and torch-style methods work.

    ``value`` is the numpy value (or, when nested, a tape array of an outer tape);
    ``entry`` is the row of the tape that computed it.
    """

    __slots__ = ("tape", "entry", "value")
    __array_priority__ = 1000  # numpy defers binary operators to us

    def __init__(self, tape: Tape, entry: int, value: Any) -> None:
        self.tape, self.entry, self.value = tape, entry, value

    # ----- array attributes -----
    shape = property(lambda self: self.value.shape)
    ndim = property(lambda self: self.value.ndim)
    dtype = property(lambda self: np.result_type(raw(self.value)))

    def __len__(self) -> int:
        return len(self.value)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d (scalar) tape value")
        return (self[i] for i in range(len(self.value)))

    def __repr__(self) -> str:
        return f"TapeArray(#{self.entry}, {raw(self.value)!r})"

    # ----- conversions: plain numbers lose the gradient, so say so -----
    def _refuse(self, what: str):
        raise TracedConversionError(
            f"{what} on a tape value would turn it into a plain number and drop its gradient; "
            "keep the computation in numpy/workbench functions (np.stack instead of filling a "
            "numpy array), or take x.item() / wb.stop_gradient(x) if a constant is meant")

    def __float__(self):
        self._refuse("float()")

    def __int__(self):
        self._refuse("int()")

    def __index__(self):
        self._refuse("using it as an index")

    def __array__(self, dtype=None, copy=None):
        self._refuse("np.asarray()/np.array() (or storing it into a numpy array)")

    def __bool__(self) -> bool:
        return bool(raw(self.value))

    def item(self) -> float:
        """The value as a Python number, with no gradient (like torch's ``.item()``)."""
        self.tape.cuts.add("item()")
        return raw(self.value).item()

    def tolist(self) -> Any:
        return raw(self.value).tolist()

    __hash__ = None  # type: ignore[assignment]  # like ndarray

    # Operators, numpy protocols (__array_ufunc__, __array_function__, __torch_function__,
    # __wb_apply__) and torch-style methods are installed by methods.py.
