"""Property test: random compositions of the op table (and array steps) over random shapes.

tape == symbolic == central finite differences, within tolerance. Hypothesis prints the failing
program and a ``@reproduce_failure`` blob (``print_blob=True``), so a failure can be replayed.
"""

from __future__ import annotations

import numpy as np
from conftest import central_difference
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.check import kinks

# Unary steps, each kept inside its op's domain and away from overflow.
UNARY = {
    "sin": np.sin, "cos": np.cos, "tanh": np.tanh, "atan": np.arctan, "neg": np.negative,
    "sigmoid": wb.sigmoid, "softplus": wb.softplus, "abs": np.abs, "relu": wb.relu,
    "asinh": np.arcsinh, "square": lambda x: x * x, "pow3": lambda x: x ** 3.0,
    "exp(tanh)": lambda x: np.exp(np.tanh(x)), "expm1(tanh)": lambda x: np.expm1(np.tanh(x)),
    "sinh(tanh)": lambda x: np.sinh(np.tanh(x)), "cosh(tanh)": lambda x: np.cosh(np.tanh(x)),
    "tan(tanh/2)": lambda x: np.tan(0.5 * np.tanh(x)),
    "asin(.9tanh)": lambda x: np.arcsin(0.9 * np.tanh(x)),
    "acos(.9tanh)": lambda x: np.arccos(0.9 * np.tanh(x)),
    "atanh(.9tanh)": lambda x: np.arctanh(0.9 * np.tanh(x)),
    "log(1+x2)": lambda x: np.log(1.0 + x * x), "log1p(x2)": lambda x: np.log1p(x * x),
    "log2(1+x2)": lambda x: np.log2(1.0 + x * x), "log10(1+x2)": lambda x: np.log10(1.0 + x * x),
    "sqrt(1+x2)": lambda x: np.sqrt(1.0 + x * x), "acosh(1.5+x2)": lambda x: np.arccosh(1.5 + x * x),
}
GAPS: list[float] = []  # |x - y| at each np.where, from the plain numpy run


def _where(x, y):
    if isinstance(x, (np.ndarray, np.generic)) and isinstance(y, (np.ndarray, np.generic)):
        GAPS.append(float(np.min(np.abs(x - y))))
    return np.where(x > y, x, 2.0 * y)


BINARY = {
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
    "div": lambda x, y: x / (1.5 + y * y), "atan2": lambda x, y: np.arctan2(x, 1.0 + y * y),
    "pow": lambda x, y: (np.abs(x) + 0.5) ** np.tanh(y),
    "maximum": np.maximum, "minimum": np.minimum,
    "where": _where,
    "clip": lambda x, y: np.clip(x + y, -0.8, 0.9),
}
REDUCE = {
    "sum": lambda x, axis: np.sum(x, axis=axis, keepdims=True),
    "mean": lambda x, axis: np.mean(x, axis=axis, keepdims=True),
    "max": lambda x, axis: np.max(x, axis=axis, keepdims=True),
    "min": lambda x, axis: np.min(x, axis=axis, keepdims=True),
    "prod": lambda x, axis: np.prod(x, axis=axis, keepdims=True),
    "var": lambda x, axis: np.var(x, axis=axis, keepdims=True),
}

def _square(n: int) -> np.ndarray:
    return np.linspace(-1.0, 1.0, n * n).reshape(n, n) + np.eye(n)


# Shape-preserving array steps (for arrays of at least one axis): matmul, indexing, moving
# elements around, cumsum.
ARRAY = {
    "matmul": lambda z: z @ _square(z.shape[-1]),
    "flip": lambda z: z[..., ::-1],
    "transpose twice": lambda z: np.transpose(z).T,
    "roll": lambda z: np.roll(z, 1, axis=-1),
    "cumsum": lambda z: np.cumsum(z, axis=-1),
    "concatenate slice": lambda z: np.concatenate([z, 0.5 * z], axis=-1)[..., 1:z.shape[-1] + 1],
    "stack sum": lambda z: np.stack([z, np.sin(z)]).sum(axis=0),
    "gather": lambda z: z[..., [0] * z.shape[-1]] * 0.5 + z,
}

SHAPES = [(), (3,), (2, 3), (4, 1)]


@st.composite
def programs(draw):
    shape = draw(st.sampled_from(SHAPES))
    other = draw(st.sampled_from([shape, shape[-1:], ()]))  # broadcasts against shape
    floats = st.floats(-2.0, 2.0, allow_nan=False, width=64)
    x = np.array(draw(st.lists(floats, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))))
    y = np.array(draw(st.lists(floats, min_size=int(np.prod(other)), max_size=int(np.prod(other)))))
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["unary", "unary", "binary", "reduce", "array"]))
        if kind == "unary":
            steps.append(("unary", draw(st.sampled_from(sorted(UNARY))), None))
        elif kind == "binary":
            steps.append(("binary", draw(st.sampled_from(sorted(BINARY))),
                          draw(st.sampled_from(["x", "y", "self"]))))
        elif kind == "reduce" and shape:
            steps.append(("reduce", draw(st.sampled_from(sorted(REDUCE))),
                          draw(st.sampled_from([None] + list(range(len(shape)))))))
        elif shape:
            steps.append(("array", draw(st.sampled_from(sorted(ARRAY))), None))
    return x.reshape(shape), y.reshape(other), steps


def build(steps, shape):
    weights = 1.0 + 0.25 * np.arange(max(1, int(np.prod(shape)))).reshape(shape) if shape else 1.3

    def f(x, y):
        z = x
        for kind, name, arg in steps:
            if kind == "unary":
                z = UNARY[name](z)
            elif kind == "binary":
                z = BINARY[name](z, {"x": x, "y": y, "self": z}[arg])
            elif kind == "array":
                z = ARRAY[name](z) if np.ndim(z) else z
            else:
                z = REDUCE[name](z, arg)
        return np.sum(z * weights) if np.ndim(z) == len(shape) and np.shape(z) == shape \
            else np.sum(z) * 1.3

    return f


@settings(max_examples=60, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_tape_equals_symbolic_equals_finite_differences(program):
    x, y, steps = program
    note(f"x = {x!r}\ny = {y!r}\nsteps = {steps!r}")
    f = build(steps, np.broadcast_shapes(x.shape, y.shape))
    GAPS.clear()
    with np.errstate(all="ignore"):
        value = f(x, y)
    assume(np.isfinite(value) and abs(value) < 1e6)
    assume(min(GAPS, default=1.0) > 1e-3)  # np.where jumps where x == y
    tape = wb.tape.record(f, x, y, argnums=(0, 1))
    # away from kinks (relu/abs at 0, ties of max/min, clip bounds): finite differences are
    # meaningful only there, and no sign flip within the step
    assume(not kinks(tape, relative=1e-3))
    symbolic = wb.grad(f, argnums=(0, 1))(x, y)
    for k, arg in enumerate((x, y)):
        tape_g, sym_g = np.asarray(tape.gradient[k]), np.asarray(symbolic[k])
        assume(np.all(np.isfinite(sym_g)) and np.all(np.abs(sym_g) < 1e6))
        scale = max(1.0, float(np.max(np.abs(sym_g), initial=0.0)))
        np.testing.assert_allclose(tape_g, sym_g, rtol=1e-9, atol=1e-12 * scale)
        others = [x, y]

        def one(v, k=k, others=others):
            args = list(others)
            args[k] = v
            return f(*args)

        fd = central_difference(one, arg)
        np.testing.assert_allclose(tape_g, fd, rtol=1e-5, atol=1e-6 * scale)
