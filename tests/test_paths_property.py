"""Property test: a random program's gradient is the same through every path workbench has.

The paths: the first (traced) call, the cached call, the cached program at a new point, a fresh
trace at that point, ``vmap`` over both points (the batch backend), the exported numpy module
and the exported C compiled with the system compiler. They must agree with each other to
rounding, and with central finite differences (the outside oracle) away from kinks. A printer
of one op that is wrong in one backend only fails here even when no other test uses that op
there. Programs are random op-table compositions over random shapes with broadcasting (the tape
property test's steps), drawn from fixed seeds so a failure replays exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import C_COMPILER, central_difference
from test_export_c import call, compile_export
from test_export_numpy import load
from test_tape_property import ARRAY, BINARY, GAPS, REDUCE, SHAPES, UNARY, build

import workbench as wb
from workbench.check import kinks


def _close(a, b, what: str) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=1e-9, atol=1e-11, err_msg=what)


def random_program(rng: np.random.Generator):
    """A random composition of the op table (the tape property test's steps and shapes)."""
    shape = SHAPES[rng.integers(len(SHAPES))]
    other = [shape, shape[-1:], ()][rng.integers(3)]  # broadcasts against shape
    x = rng.uniform(-2.0, 2.0, size=shape)
    y = rng.uniform(-2.0, 2.0, size=other)
    steps = []
    for _ in range(rng.integers(1, 7)):
        kind = ["unary", "unary", "binary", "reduce", "array"][rng.integers(5)]
        if kind == "unary":
            steps.append(("unary", sorted(UNARY)[rng.integers(len(UNARY))], None))
        elif kind == "binary":
            steps.append(("binary", sorted(BINARY)[rng.integers(len(BINARY))],
                          ["x", "y", "self"][rng.integers(3)]))
        elif kind == "reduce" and shape:
            axes = [None, *range(len(shape))]
            steps.append(("reduce", sorted(REDUCE)[rng.integers(len(REDUCE))],
                          axes[rng.integers(len(axes))]))
        elif shape:
            steps.append(("array", sorted(ARRAY)[rng.integers(len(ARRAY))], None))
    return np.asarray(x), np.asarray(y), steps


def _usable(f, points) -> bool:
    """Finite, moderate values and gradients, away from kinks (where finite differences and
    one-sided conventions legitimately differ)."""
    for a, b in points:
        GAPS.clear()
        with np.errstate(all="ignore"):
            value = f(a, b)
        if not (np.isfinite(value) and abs(value) < 1e6 and min(GAPS, default=1.0) > 1e-3):
            return False
        tape = wb.tape.record(f, a, b, argnums=(0, 1))
        if kinks(tape, relative=1e-3):
            return False
        if not all(np.all(np.isfinite(g)) and np.all(np.abs(g) < 1e6) for g in tape.gradient):
            return False
    return True


@pytest.mark.parametrize("seed", range(12))
def test_every_path_gives_the_same_gradient(tmp_path, seed):
    rng = np.random.default_rng(seed)
    for _ in range(50):  # the first usable program of this seed
        x, y, steps = random_program(rng)
        shift = rng.uniform(-0.3, 0.3)
        f = build(steps, np.broadcast_shapes(x.shape, y.shape))
        x2, y2 = x + shift, y - shift / 2
        if _usable(f, ((x, y), (x2, y2))):
            break
    else:
        pytest.fail("no usable random program in 50 draws: the generator is broken")
    print(f"x = {x!r}, y = {y!r}, steps = {steps!r}, shift = {shift!r}")  # shown on failure

    grad = wb.grad(f, argnums=(0, 1))
    first = grad(x, y)
    cached = grad(x, y)
    at_new_point = grad(x2, y2)  # the program traced at (x, y), reused
    fresh = wb.grad(lambda a, b: f(a, b), argnums=(0, 1))(x2, y2)  # traced at (x2, y2)
    batched = wb.vmap(wb.grad(f, argnums=(0, 1)))(np.stack([x, x2]), np.stack([y, y2]))
    for k in range(2):
        _close(cached[k], first[k], f"cached call, argument {k}")
        _close(at_new_point[k], fresh[k], f"cached program vs fresh trace, argument {k}")
        _close(batched[k][0], first[k], f"vmap row 0, argument {k}")
        _close(batched[k][1], fresh[k], f"vmap row 1, argument {k}")

    wb.export(f, x, y, argnums=(0, 1), path=tmp_path / "exported.py")
    module = load(tmp_path / "exported.py", name=f"exported_paths_{seed}")
    for (a, b), want in (((x, y), first), ((x2, y2), fresh)):
        got = module.grad_f(a, b)
        for k in range(2):
            _close(got[k], want[k], f"exported numpy, argument {k}")

    if C_COMPILER is not None:
        _, lib = compile_export(tmp_path, f, x, y, argnums=(0, 1))
        for (a, b), want in (((x, y), first), ((x2, y2), fresh)):
            status, outs = call(lib.grad_f, (a, b), (np.size(a), np.size(b)))
            assert status == 0, "the exported C refused a point on the traced branch"
            for k in range(2):
                _close(outs[k].reshape(np.shape(want[k])), want[k], f"exported C, argument {k}")

    # the outside oracle: central differences of the plain numpy function
    np.testing.assert_allclose(first[0], central_difference(lambda a: f(a, y), x),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(first[1], central_difference(lambda b: f(x, b), y),
                               rtol=1e-4, atol=1e-5)


def test_the_c_path_is_exercised_in_ci():
    """The C path above is skipped silently without a compiler: CI must have one."""
    import os

    if os.environ.get("CI") and C_COMPILER is None:
        pytest.fail("no C compiler on the CI machine: .ci/run installs gcc")
