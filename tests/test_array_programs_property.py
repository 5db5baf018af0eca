"""Property test: random array programs get the same gradient through every public path.

Programs (``tests/array_programs.py``) are straight-line numpy over 1-3 small float64 inputs:
elementwise ops, broadcasting, matmul, reductions over an axis, reshape/transpose, slicing and
gathers, concatenate/stack, ``np.where``, ``clip`` and a Python ``if`` on a traced sum, ending
in a scalar loss. For each, at three random points:

* ``wb.grad`` (argnums = every input) == the numeric tape ``wb.tape.grad`` (independent code)
  == central finite differences (only away from every relu/abs/max/where/clip threshold);
* the same ``wb.grad`` object called again at a second point (its cached program, guarded)
  == a fresh trace there (a new function object);
* ``wb.export(target="numpy")`` traced at the first point and ``also_at`` the second, loaded
  and run, == the tape at both points;
* ``wb.vmap(wb.grad(f))`` over the three points == the tape at each point;
* the scalar lowering: ``wb.derivative(..., simplify=False)``'s element formulas (SymPy),
  evaluated by SymPy's own ``lambdify`` at the first point, == the tape.

The oracle is the tape (and finite differences for the tape itself): no expected value comes
from ``wb.grad``. At exact ties (``np.maximum(a, a)``, ``abs(0)``) the exact paths must agree on
torch's conventions; a point where a decision is within rounding of its threshold (but not on
it) is skipped, as the paths may legitimately round it differently.

Programs are drawn from small integers (no recursion, no filters), so the generator costs
microseconds; the examples are derandomised and not shrunk (a failure prints
the program as code); ``WB_ARRAY_PROGRAMS_EXPLORE=1`` searches new examples and shrinks what
fails.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import sympy
from array_programs import Program, Step, build_function, decisions, evaluate, points, programs
from conftest import central_difference
from hypothesis import HealthCheck, Phase, assume, event, example, given, note, settings
from hypothesis import strategies as st
from test_export_numpy import load

import workbench as wb

RTOL = 1e-8  # between exact methods (rounding only)
FD_RTOL = 1e-5  # central differences, step 1e-6 relative
KINK_MARGIN = 1e-3  # finite differences only where every decision is this far from its threshold
ROUNDING_ZONE = 1e-9  # a decision this close (but not equal) to its threshold may round either way
_modules = itertools.count()


def _close(got, want, what: str, scale: float, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float),
                               rtol=rtol, atol=rtol * scale, err_msg=what)


def _finite_differences(f, point):
    grads = []
    for k in range(len(point)):
        def one(v, k=k):
            args = list(point)
            args[k] = v
            return f(*args)
        grads.append(central_difference(one, point[k]))
    return grads


def _scalar_lowering(f, point, argnums):
    """The gradient from ``wb.derivative``'s element formulas, evaluated by SymPy's lambdify
    (not workbench's code generation): one array per input, in the input's shape."""
    d = wb.derivative(f, *point, argnums=argnums, simplify=False)
    values = {}  # symbol -> number, for every element of every input
    for param, x in zip(d.capture.params, point, strict=True):
        symbol = d.symbols[param.name]
        flat = sympy.flatten(symbol.tolist()) if isinstance(symbol, sympy.Array) else [symbol]
        values.update(zip(flat, np.ravel(x).tolist(), strict=True))
    grads = []
    for formula, x in zip(d.formulas, point, strict=True):
        env = dict(values)
        if formula.raw is not None:
            event("scalar lowering: one formula per element")
            entries = sympy.flatten(formula.raw.tolist()) if isinstance(formula.raw, sympy.Array) \
                else [formula.raw]
        else:  # past wb.config.pretty_max_ops: shared subexpressions t_k = ...
            event("scalar lowering: CSE assignments")
            assert formula.cse_exprs, f"wb.derivative gave no formula: {formula.notes}"
            for name, expr in formula.assignments:
                env[name] = _lambdified(expr, env)
            entries = formula.cse_exprs
        grads.append(np.array([_lambdified(e, env) for e in entries], dtype=float)
                     .reshape(np.shape(x)))
    return grads


def _lambdified(expr, env):
    """``expr`` evaluated by SymPy's lambdify at the numbers (and truth values) of ``env``.

    A truth value named by CSE (``t_27 = x > y``) is put into the expression first: lambdify
    turns ``Heaviside(Piecewise((v, t_27), (w, True)))`` into ``Heaviside(v)``, dropping a
    condition that is a bare symbol (DESIGN.md's warning about CSE'd Piecewise conditions).
    """
    expr = sympy.sympify(expr)
    truths = {s: sympy.true if env[s] else sympy.false for s in expr.free_symbols
              if isinstance(env[s], (bool, np.bool_))}
    expr = expr.xreplace(truths)
    free = sorted(expr.free_symbols, key=str)
    return sympy.lambdify(free, expr, modules="numpy")(*(env[s] for s in free))


# Hand-written programs that every run checks, whatever the random draw covers.
# An `if` that goes the other way at the second point (seed 1): the cached version's guard,
# export with also_at, vmap rows in different branches.
IF_BRANCHES = Program([(2, 3), (3,)], [
    Step("mul", (0, 1)), Step("branch", (2,), (0.0,)), Step("max", (3,), (0, False)),
    Step("where", (4, 1)), Step("sin", (5,))], "weighted_sum")
# Exact ties everywhere (max over a stack of a value with itself, maximum(a, a), abs(0)):
# torch's conventions must agree across every path (finite differences are skipped).
EXACT_TIES = Program([(2, 2)], [
    Step("stack", (0, 0), (0,)), Step("max", (1,), (0, False)), Step("maximum", (2, 0)),
    Step("sub", (3, 0)), Step("abs", (4,)), Step("add", (5, 0))], "weighted_sum")
# Matmul of two values (matrix @ vector, transposed matrix @ vector), concatenation of two
# inputs' results, a gather with repeated indices (scatter-add adjoint), broadcasting (1, 2).
MATMULS = Program([(3, 2), (2,), (1, 2)], [
    Step("matmul", (0, 1)), Step("T", (0,)), Step("matmul", (4, 3)),
    Step("concatenate", (5, 1), (0,)), Step("take", (6,), (0, (3, 0, 0, 2))),
    Step("reshape", (7,), ((2, 2),)), Step("mul", (8, 2))], "mean")
# A 0-d input, size-1 axes, a reduction over a negative axis with keepdims, a method reshape,
# a clip whose decisions change between the points (seed 0).
BROADCASTS = Program([(), (1, 3, 1), (3, 1)], [
    Step("mul", (1, 0)), Step("add", (3, 2)), Step("sum", (4,), (-2, True)),
    Step("sub", (5, 2)), Step("reshape_method", (6,), ((3,),)), Step("clip", (7,), (-0.5, 0.5)),
    Step("sqrt1p_sq", (8,))], "weighted_sum")

# Found by WB_ARRAY_PROGRAMS_EXPLORE=1 (shrunk): a derivative past wb.config.pretty_max_ops,
# shown as CSE assignments whose truth values (np.where's mask) are conditions under relu's
# Heaviside: evaluating them needs the truth values substituted (see _lambdified).
CSE_TRUTH_VALUES = Program([(2, 4)], [
    Step("log1p_sq", (0,)), Step("add", (0, 0)), Step("add", (1, 1)), Step("where", (0, 3)),
    Step("relu", (4,))], "weighted_sum")
# Found by WB_ARRAY_PROGRAMS_EXPLORE=1 (shrunk): np.where on a comparison whose two sides SymPy
# folds to constants; the SymPy form (export, derivative, graph) crashed inside SymPy's
# Piecewise until such comparisons were decided (ops._relational).
CONSTANT_CONDITION = Program([(1,), ()], [
    Step("sub", (0, 0)), Step("where", (2, 2))], "weighted_sum")

# WB_ARRAY_PROGRAMS_EXAMPLES=n runs n examples; WB_ARRAY_PROGRAMS_EXPLORE=1 draws new random
# examples each run and shrinks a failure to a small program (a search, not the suite's check).
EXPLORE = bool(os.environ.get("WB_ARRAY_PROGRAMS_EXPLORE"))


@settings(max_examples=int(os.environ.get("WB_ARRAY_PROGRAMS_EXAMPLES", 60)), deadline=None,
          derandomize=not EXPLORE, database=None, print_blob=True,
          phases=(Phase.explicit, Phase.generate, *((Phase.shrink,) if EXPLORE else ())),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(program=programs(), seed=st.integers(0, 2**32 - 1))
@example(program=IF_BRANCHES, seed=1)
@example(program=EXACT_TIES, seed=0)
@example(program=MATMULS, seed=0)
@example(program=BROADCASTS, seed=0)
@example(program=CSE_TRUTH_VALUES, seed=0)
@example(program=CONSTANT_CONDITION, seed=0)
def test_array_program_gradients_agree(program: Program, seed: int):
    note(repr(program))
    f = build_function(program)
    n = len(program.inputs)
    argnums = tuple(range(n))
    pts = points(program, seed, 3)
    found = [decisions(program, evaluate(program, p)) for p in pts]
    note(f"points (seed {seed}): {pts!r}")
    for p, dec in zip(pts, found, strict=True):
        value = evaluate(program, p)[-1]
        assume(np.all(np.isfinite(value)) and np.all(np.abs(value) < 1e6))
        assume(not (0.0 < dec.margin < ROUNDING_ZONE))
        loss = f(*p)
        assume(np.isfinite(loss) and abs(loss) < 1e6)

    tape = [wb.tape.grad(f, argnums=argnums)(*p) for p in pts]
    scale = max(1.0, *(float(np.max(np.abs(g), initial=0.0)) for t in tape for g in t))

    grad = wb.grad(f, argnums=argnums)
    first = grad(*pts[0])
    for k in range(n):
        _close(first[k], tape[0][k], f"wb.grad vs tape, input v{k}", scale)
    event("decisions: " + ("none" if found[0].margin == np.inf else
                           "exact ties" if found[0].margin == 0 else "clear of thresholds"))
    event(f"decisions differ between the points: {found[0].taken != found[1].taken}")
    if found[0].margin > KINK_MARGIN:
        event("finite differences checked")
        fd_scale = max(scale, 1e-3 * abs(float(f(*pts[0]))))  # rounding error grows with |f|/h
        for k, fd in enumerate(_finite_differences(f, pts[0])):
            _close(tape[0][k], fd, f"tape vs finite differences, input v{k}", fd_scale, FD_RTOL)

    again = grad(*pts[0])
    at_second = grad(*pts[1])  # the program traced at the first point, its guards checked
    fresh = wb.grad(build_function(program), argnums=argnums)(*pts[1])
    for k in range(n):
        _close(again[k], first[k], f"cached call, input v{k}", scale)
        _close(fresh[k], tape[1][k], f"fresh trace at the second point vs tape, input v{k}",
               scale)
        _close(at_second[k], fresh[k], f"cached program at the second point vs fresh trace, "
               f"input v{k}", scale)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "program.py"
        simplify_max_ops = wb.config.simplify_max_ops
        wb.config.simplify_max_ops = 0  # the docstring's formula, unchecked: up to 2 s each
        try:
            wb.export(f, *pts[0], argnums=argnums, target="numpy", path=path, name="program",
                      also_at=[pts[1]])
        finally:
            wb.config.simplify_max_ops = simplify_max_ops
        module = load(path, name=f"exported_array_program_{next(_modules)}")
    for j in (0, 1):
        got = module.grad_program(*pts[j])
        got = got if isinstance(got, tuple) else (got,)
        for k in range(n):
            _close(got[k], tape[j][k], f"exported numpy at point {j}, input v{k}", scale)

    with warnings.catch_warnings():  # an `if` taking different branches in different rows
        warnings.filterwarnings("ignore", message="vmap: the function takes different branches")
        batched = wb.vmap(wb.grad(f, argnums=argnums))(*(np.stack(xs)
                                                         for xs in zip(*pts, strict=True)))
    for j in range(3):
        for k in range(n):
            _close(batched[k][j], tape[j][k], f"vmap row {j}, input v{k}", scale)

    lowered = _scalar_lowering(f, pts[0], argnums)
    for k in range(n):
        _close(lowered[k], tape[0][k], f"scalar lowering (wb.derivative formulas), input v{k}",
               scale)
