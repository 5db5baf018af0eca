"""Random numpy programs over small float64 arrays, as data, for property tests.

A :class:`Program` is a list of :class:`Step` records over numbered values: ``v0 .. v{n-1}`` are
the inputs, each step appends one value (straight-line code, but for one op that takes a Python
``if`` on a traced sum). Shapes are tracked while drawing, so every program is valid by
construction (no rejection): broadcasting partners, matmul operands, concatenation
partners and reshape targets are chosen among the shapes that fit, and no value has more than
:data:`MAX_SIZE` elements. The program ends in a scalar loss. ``repr(program)`` prints it as
numpy code, so a failing example reads like the program it is.

:func:`build_function` turns a program into a plain Python function by closure (no ``exec``),
which runs on numpy arrays, traced values and tape values alike. :func:`evaluate` runs it on
numpy arrays keeping every intermediate, and :func:`decisions` measures how far each
non-smooth decision (relu, abs, maximum, where, clip, max reduction, ``if``) is from its
threshold, and which way it went: finite differences are meaningful only away from
thresholds, and two points with the same decisions lie in the same traced branch.

>>> import numpy as np
>>> program = Program([(2, 3), (3,)], [Step("mul", (0, 1)), Step("sum", (2,), (1, False))], "mean")
>>> program  # doctest: +NORMALIZE_WHITESPACE
def f(v0, v1):  # v0: (2, 3), v1: (3,)
    v2 = v0 * v1  # (2, 3)
    v3 = np.sum(v2, axis=1, keepdims=False)  # (2,)
    return np.mean(v3)
>>> f = build_function(program)
>>> float(f(np.ones((2, 3)), np.arange(3.0)))
3.0
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

MAX_SIZE = 40  # elements per array: the element-level engine of today stays fast
MAX_STEPS = 6

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Step:
    """One operation: ``op`` (a key of :data:`OPS`), the values it reads, its parameters."""

    op: str
    args: tuple[int, ...]
    params: tuple = ()


@dataclass(frozen=True)
class Program:
    """Input shapes, steps, and the loss (``"mean"`` or ``"weighted_sum"``)."""

    inputs: tuple[Shape, ...]
    steps: tuple[Step, ...]
    loss: str

    def __init__(self, inputs: Sequence[Shape], steps: Sequence[Step], loss: str) -> None:
        object.__setattr__(self, "inputs", tuple(tuple(s) for s in inputs))
        object.__setattr__(self, "steps", tuple(steps))
        object.__setattr__(self, "loss", loss)

    def shapes(self) -> list[Shape]:
        """The shape of every value, inputs first."""
        shapes = list(self.inputs)
        for step in self.steps:
            shapes.append(result_shape(step, shapes))
        return shapes

    def __repr__(self) -> str:
        shapes = self.shapes()
        n = len(self.inputs)
        names = [f"v{k}" for k in range(len(shapes))]
        lines = ["def f(" + ", ".join(names[:n]) + "):  # "
                 + ", ".join(f"v{k}: {s}" for k, s in enumerate(self.inputs))]
        for k, step in enumerate(self.steps):
            text = OPS[step.op].text(*(names[a] for a in step.args), *step.params)
            lines.append(f"    v{n + k} = {text}  # {shapes[n + k]}")
        last = names[-1]
        lines.append(f"    return np.sum({last} * constant({shapes[-1]}, 0))"
                     if self.loss == "weighted_sum" else f"    return np.mean({last})")
        return "\n".join(lines)


def constant(shape: Shape, salt: int) -> np.ndarray:
    """A fixed array of ``shape`` with entries in [-1, 1], different for each ``salt``."""
    size = int(np.prod(shape, dtype=int))
    return np.cos(1.0 + 0.37 * salt + 0.7 * np.arange(size)).reshape(shape)


@dataclass(frozen=True)
class OpSpec:
    """How an op runs (``apply(*arrays, *params)``) and prints (``text(*names, *params)``)."""

    apply: Callable[..., Any]
    text: Callable[..., str]


def _take(a, axis: int, index: tuple[int, ...]):
    return a[(slice(None),) * axis + (list(index),)]


def _slice(a, axis: int, start, stop, step):
    return a[(slice(None),) * axis + (slice(start, stop, step),)]


def _fmt_slice(start, stop, step) -> str:
    text = f"{'' if start is None else start}:{'' if stop is None else stop}"
    return text + ("" if step is None else f":{step}")


OPS: dict[str, OpSpec] = {
    # elementwise, shape kept
    "sin": OpSpec(np.sin, lambda a: f"np.sin({a})"),
    "cos": OpSpec(np.cos, lambda a: f"np.cos({a})"),
    "tanh": OpSpec(np.tanh, lambda a: f"np.tanh({a})"),
    "exp_tanh": OpSpec(lambda a: np.exp(np.tanh(a)), lambda a: f"np.exp(np.tanh({a}))"),
    "exp_sin": OpSpec(lambda a: np.exp(np.sin(a)), lambda a: f"np.exp(np.sin({a}))"),
    "log1p_sq": OpSpec(lambda a: np.log(1.0 + a * a), lambda a: f"np.log(1.0 + {a} * {a})"),
    "sqrt1p_sq": OpSpec(lambda a: np.sqrt(1.0 + a * a), lambda a: f"np.sqrt(1.0 + {a} * {a})"),
    "abs": OpSpec(np.abs, lambda a: f"np.abs({a})"),
    "relu": OpSpec(lambda a: np.maximum(a, 0.0), lambda a: f"np.maximum({a}, 0.0)"),
    "square": OpSpec(lambda a: a * a, lambda a: f"{a} * {a}"),
    "neg": OpSpec(lambda a: -a, lambda a: f"-{a}"),
    "clip": OpSpec(lambda a, lo, hi: np.clip(a, lo, hi),
                   lambda a, lo, hi: f"np.clip({a}, {lo}, {hi})"),
    "scale": OpSpec(lambda a, c: c * a, lambda a, c: f"{c} * {a}"),
    # Python control flow on a traced value: a guard in the trace, a branch per example in vmap
    "branch": OpSpec(lambda a, t: np.tanh(a) if np.sum(a) > t else 0.5 * a,
                     lambda a, t: f"(np.tanh({a}) if np.sum({a}) > {t} else 0.5 * {a})"),
    # binary with broadcasting
    "add": OpSpec(lambda a, b: a + b, lambda a, b: f"{a} + {b}"),
    "sub": OpSpec(lambda a, b: a - b, lambda a, b: f"{a} - {b}"),
    "mul": OpSpec(lambda a, b: a * b, lambda a, b: f"{a} * {b}"),
    "div": OpSpec(lambda a, b: a / (1.0 + b * b), lambda a, b: f"{a} / (1.0 + {b} * {b})"),
    "maximum": OpSpec(np.maximum, lambda a, b: f"np.maximum({a}, {b})"),
    "where": OpSpec(lambda a, b: np.where(a > b, a, 0.5 * b),
                    lambda a, b: f"np.where({a} > {b}, {a}, 0.5 * {b})"),
    "where_sin": OpSpec(lambda a, b: np.where(a > 0.25, np.sin(b), a),
                        lambda a, b: f"np.where({a} > 0.25, np.sin({b}), {a})"),
    # matmul: with another value, or with a constant on the right / left
    "matmul": OpSpec(lambda a, b: a @ b, lambda a, b: f"{a} @ {b}"),
    "matmul_const": OpSpec(lambda a, shape, salt: a @ constant(shape, salt),
                           lambda a, shape, salt: f"{a} @ constant({shape}, {salt})"),
    "const_matmul": OpSpec(lambda a, shape, salt: constant(shape, salt) @ a,
                           lambda a, shape, salt: f"constant({shape}, {salt}) @ {a}"),
    # reductions
    "sum": OpSpec(lambda a, axis, keep: np.sum(a, axis=axis, keepdims=keep),
                  lambda a, axis, keep: f"np.sum({a}, axis={axis}, keepdims={keep})"),
    "mean": OpSpec(lambda a, axis, keep: np.mean(a, axis=axis, keepdims=keep),
                   lambda a, axis, keep: f"np.mean({a}, axis={axis}, keepdims={keep})"),
    "max": OpSpec(lambda a, axis, keep: np.max(a, axis=axis, keepdims=keep),
                  lambda a, axis, keep: f"np.max({a}, axis={axis}, keepdims={keep})"),
    "sum_method": OpSpec(lambda a, axis: a.sum(axis=axis), lambda a, axis: f"{a}.sum(axis={axis})"),
    # moving elements
    "reshape": OpSpec(lambda a, shape: np.reshape(a, shape),
                      lambda a, shape: f"np.reshape({a}, {shape})"),
    "reshape_method": OpSpec(lambda a, shape: a.reshape(shape),
                             lambda a, shape: f"{a}.reshape({shape})"),
    "transpose": OpSpec(lambda a, perm: np.transpose(a, perm),
                        lambda a, perm: f"np.transpose({a}, {perm})"),
    "T": OpSpec(lambda a: a.T, lambda a: f"{a}.T"),
    "slice": OpSpec(_slice, lambda a, axis, start, stop, step:
                    f"{a}[{':, ' * axis}{_fmt_slice(start, stop, step)}]"),
    "take": OpSpec(_take, lambda a, axis, index: f"{a}[{':, ' * axis}{list(index)}]"),
    "index": OpSpec(lambda a, i: a[i], lambda a, i: f"{a}[{i}]"),
    "concatenate": OpSpec(lambda a, b, axis: np.concatenate([a, b], axis=axis),
                          lambda a, b, axis: f"np.concatenate([{a}, {b}], axis={axis})"),
    "stack": OpSpec(lambda a, b, axis: np.stack([a, b], axis=axis),
                    lambda a, b, axis: f"np.stack([{a}, {b}], axis={axis})"),
}

UNARY = ("sin", "cos", "tanh", "exp_tanh", "exp_sin", "log1p_sq", "sqrt1p_sq", "abs", "relu",
         "square", "neg")
BINARY = ("add", "sub", "mul", "div", "maximum", "where", "where_sin")
REDUCTIONS = ("sum", "mean", "max")


def result_shape(step: Step, shapes: Sequence[Shape]) -> Shape:
    """The shape ``step`` makes: numpy run on zeros of the operand shapes (cheap, exact)."""
    zeros = [np.zeros(shapes[a]) for a in step.args]
    with np.errstate(all="ignore"):
        return np.shape(OPS[step.op].apply(*zeros, *step.params))


def _size(shape: Shape) -> int:
    return int(np.prod(shape, dtype=int))


def _broadcast(a: Shape, b: Shape) -> Shape | None:
    try:
        shape = np.broadcast_shapes(a, b)
    except ValueError:
        return None
    return shape if _size(shape) <= MAX_SIZE else None


# ----- the strategy -----
# Shapes of rank 0..3 with axes of length 1..4 (size-1 axes included), at most 24 elements.
BASE_SHAPES = [s for r in range(4) for s in itertools.product(range(1, 5), repeat=r)
               if _size(s) <= 24]


def _variants(base: Shape) -> list[Shape]:
    """Shapes that broadcast to ``base``: suffixes of it, with any axes set to 1."""
    found = set()
    for r in range(len(base) + 1):
        tail = base[len(base) - r:]
        for mask in itertools.product((False, True), repeat=r):
            found.add(tuple(1 if m else d for d, m in zip(tail, mask, strict=True)))
    return sorted(found, key=lambda s: (len(s), s))


def _reshape_targets(shape: Shape) -> list[Shape]:
    size = _size(shape)
    targets = {(size,), tuple(reversed(shape)), (1, *shape), (*shape, 1),
               tuple(d for d in shape if d != 1)}
    if size % 2 == 0 and size > 2:
        targets.add((2, size // 2))
    targets.discard(shape)
    return sorted(targets, key=lambda s: (len(s), s)) or [(size,)]


def _applicable(shape: Shape, shapes: list[Shape]) -> dict[str, list[str]]:
    """The ops that can read a value of ``shape``, by family (binary ops always can: a value
    pairs with itself)."""
    families = {
        "arithmetic": ["add", "sub", "mul", "div"],
        "piecewise": ["maximum", "where", "where_sin", "clip", "relu", "abs", "branch"],
        "elementwise": [op for op in UNARY if op not in ("relu", "abs")] + ["scale"],
        "reduction": [*REDUCTIONS],
        "reshape": ["reshape", "reshape_method"],
    }
    if shape:
        families["reduction"].append("sum_method")
        families["matmul"] = ["matmul_const", "const_matmul"]
        if any(len(s) in (1, 2) and s[0] == shape[-1] for s in shapes):
            families["matmul"].append("matmul")
        families["reshape"].append("T")
        if len(shape) >= 2:
            families["reshape"].append("transpose")
        families["indexing"] = ["take", "index"] + (["slice"] if max(shape) >= 2 else [])
        families["joining"] = ["concatenate"] + (["stack"] if _size(shape) * 2 <= MAX_SIZE
                                                 else [])
    return families


def _draw_step(draw, shapes: list[Shape]) -> Step:
    last = len(shapes) - 1
    src = last if draw(st.booleans()) else draw(st.integers(0, last))
    shape = shapes[src]
    families = _applicable(shape, shapes)
    op = draw(st.sampled_from(families[draw(st.sampled_from(sorted(families)))]))
    ndim = len(shape)
    if op in UNARY or op == "T":
        return Step(op, (src,))
    if op == "clip":
        lo = draw(st.sampled_from((-1.0, -0.5, 0.0)))
        return Step(op, (src,), (lo, lo + draw(st.sampled_from((0.5, 1.0, 1.5)))))
    if op == "branch":
        return Step(op, (src,), (draw(st.sampled_from((0.0, -0.5, 0.5))),))
    if op == "scale":
        return Step(op, (src,), (draw(st.sampled_from((-1.5, 0.5, 2.0))),))
    if op in BINARY:
        partners = [k for k, s in enumerate(shapes) if _broadcast(shape, s) is not None]
        other = draw(st.sampled_from(partners))
        return Step(op, (src, other) if draw(st.booleans()) else (other, src))
    if op in REDUCTIONS:
        axis = draw(st.sampled_from([None, *range(-ndim, ndim)]))
        return Step(op, (src,), (axis, draw(st.booleans())))
    if op == "sum_method":
        return Step(op, (src,), (draw(st.sampled_from([None, *range(ndim)])),))
    if op in ("reshape", "reshape_method"):
        return Step(op, (src,), (draw(st.sampled_from(_reshape_targets(shape))),))
    if op == "transpose":
        perms = [p for p in itertools.permutations(range(ndim)) if p != tuple(range(ndim))]
        return Step(op, (src,), (draw(st.sampled_from(perms)),))
    if op == "slice":
        axis = draw(st.sampled_from([k for k, d in enumerate(shape) if d >= 2]))
        start, stop, step = draw(st.sampled_from(
            [(1, None, None), (None, -1, None), (None, None, -1), (None, None, 2), (-2, None, -1)]))
        return Step(op, (src,), (axis, start, stop, step))
    if op == "take":
        axis = draw(st.integers(0, ndim - 1))
        n = draw(st.integers(1, max(1, min(4, MAX_SIZE * shape[axis] // _size(shape)))))
        index = tuple(draw(st.integers(0, shape[axis] - 1)) for _ in range(n))
        return Step(op, (src,), (axis, index))
    if op == "index":
        return Step(op, (src,), (draw(st.integers(-shape[0], shape[0] - 1)),))
    if op == "concatenate":
        axis = draw(st.integers(0, ndim - 1))
        partners = [k for k, s in enumerate(shapes) if len(s) == ndim
                    and all(d == e for i, (d, e) in enumerate(zip(s, shape, strict=True))
                            if i != axis) and _size(shape) + _size(s) <= MAX_SIZE]
        if not partners:  # even with itself the result would be too big
            return Step("sin", (src,))
        return Step(op, (src, draw(st.sampled_from(partners))), (axis,))
    if op == "stack":
        partners = [k for k, s in enumerate(shapes) if s == shape]
        return Step(op, (src, draw(st.sampled_from(partners))), (draw(st.integers(0, ndim)),))
    if op == "matmul":
        partners = [k for k, s in enumerate(shapes) if len(s) in (1, 2) and s[0] == shape[-1]
                    and _size(shape[:-1] + s[1:]) <= MAX_SIZE]
        if not partners:
            return Step("sin", (src,))
        return Step(op, (src, draw(st.sampled_from(partners))))
    if op == "matmul_const":  # (..., n) @ (n,) or (n, m)
        m = draw(st.sampled_from([None, 1, 2, 3]))
        if m is not None and _size(shape[:-1]) * m > MAX_SIZE:
            m = None
        right = (shape[-1],) if m is None else (shape[-1], m)
        return Step(op, (src,), (right, draw(st.integers(0, 9))))
    if op == "const_matmul":  # (m, n) @ (..., n, k) or (n,)
        n = shape[-2] if ndim >= 2 else shape[0]
        m = draw(st.integers(1, 3))
        if _size(shape) // n * m > MAX_SIZE:
            m = 1
        return Step(op, (src,), ((m, n), draw(st.integers(0, 9))))
    raise AssertionError(f"no parameters drawn for op {op!r}")


@st.composite
def programs(draw, max_steps: int = MAX_STEPS) -> Program:
    """A random valid program: 1-3 inputs broadcasting against one base shape, 1-``max_steps``
    steps, a loss. Every draw is a small integer or a choice from a short list."""
    base = draw(st.sampled_from(BASE_SHAPES))
    variants = _variants(base)
    inputs = [base] + [draw(st.sampled_from(variants)) for _ in range(draw(st.integers(0, 2)))]
    shapes = list(inputs)
    steps = []
    for _ in range(draw(st.integers(1, max_steps))):
        step = _draw_step(draw, shapes)
        steps.append(step)
        shapes.append(result_shape(step, shapes))
    return Program(inputs, steps, draw(st.sampled_from(("weighted_sum", "mean"))))


# ----- running a program -----
def _run(program: Program, inputs: Sequence[Any]) -> list[Any]:
    values = list(inputs)
    for step in program.steps:
        values.append(OPS[step.op].apply(*(values[a] for a in step.args), *step.params))
    return values


def _loss(program: Program, last: Any) -> Any:
    if program.loss == "weighted_sum":
        return np.sum(last * constant(np.shape(last), 0))
    return np.mean(last)


def build_function(program: Program) -> Callable[..., Any]:
    """The program as a Python function of its inputs (fixed arity, so parameter names and
    ``argnums`` work as for a hand-written function)."""

    def run(*inputs: Any) -> Any:
        return _loss(program, _run(program, inputs)[-1])

    arity = len(program.inputs)
    if arity == 1:
        def f(v0):
            return run(v0)
    elif arity == 2:
        def f(v0, v1):
            return run(v0, v1)
    else:
        def f(v0, v1, v2):
            return run(v0, v1, v2)
    return f


def evaluate(program: Program, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Every value of the program (inputs first) on numpy arrays."""
    with np.errstate(all="ignore"):
        return [np.asarray(v) for v in _run(program, [np.asarray(x, float) for x in inputs])]


def points(program: Program, seed: int, count: int) -> list[tuple[np.ndarray, ...]]:
    """``count`` input points with entries uniform in [-2, 2], from ``seed``."""
    rng = np.random.default_rng(seed)
    return [tuple(rng.uniform(-2.0, 2.0, size=s) for s in program.inputs) for _ in range(count)]


@dataclass
class Decisions:
    """How far the program's non-smooth decisions are from their thresholds (relative
    distance; ``inf`` with none) and which way each went (comparable between points)."""

    margin: float
    taken: tuple


def _gap(a, b) -> np.ndarray:
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    return np.abs(a - b) / np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))


def decisions(program: Program, values: Sequence[np.ndarray]) -> Decisions:
    """The decisions of ``program`` at the point whose values are ``values``."""
    gaps, taken = [np.inf], []

    def record(a, b):
        gap = _gap(a, b)
        if gap.size:
            gaps.append(float(gap.min()))
        a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
        taken.append(tuple(np.sign(a - b).ravel()))

    for step in program.steps:
        ops = [values[a] for a in step.args]
        if step.op in ("abs", "relu"):
            record(ops[0], 0.0)
        elif step.op in ("maximum", "where"):
            record(ops[0], ops[1])
        elif step.op == "branch":
            record(np.sum(ops[0]), step.params[0])
        elif step.op == "where_sin":
            record(ops[0], 0.25)
        elif step.op == "clip":
            record(ops[0], step.params[0])
            record(ops[0], step.params[1])
        elif step.op == "max":
            axis, _ = step.params
            a = ops[0]
            taken.append(tuple(np.argmax(a, axis=axis).ravel()) if axis is not None
                         else (int(np.argmax(a)),))
            if a.size > 1 and (axis is None or a.shape[axis] > 1):
                # the gap between the largest and the second largest along the axis
                flat = np.moveaxis(a, axis, -1) if axis is not None else a.reshape(-1)
                ordered = np.sort(flat, axis=-1)
                gaps.append(float(_gap(ordered[..., -1], ordered[..., -2]).min()))
    return Decisions(min(gaps), tuple(taken))
