"""Bounded time and memory: loops that must end, inputs refused from their shapes before any
copy, a simplification deadline that holds in any thread, and transforms that are thread-safe.

Expected values come from mathematics (closed forms) and torch run live; the loop and memory
bounds run in a subprocess with a timeout and an address-space cap.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import workbench as wb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_isolated(code: str, timeout: float, memory_bytes: int | None = None) -> str:
    """Run ``code`` in a fresh Python with this worktree first on the path; return its stdout."""
    prelude = "import resource\n"
    if memory_bytes is not None:
        prelude += f"resource.setrlimit(resource.RLIMIT_AS, ({memory_bytes}, {memory_bytes}))\n"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


# ----- a fresh trace that cannot satisfy its own guard (nan compared by .item()) -----

def test_vmap_of_item_at_nan_ends_and_gives_nan():
    out = run_isolated("""
        import warnings, numpy as np, workbench as wb
        warnings.simplefilter("ignore")
        print(wb.vmap(lambda x: x * x.item())(np.array([np.nan])).tolist())
        print(wb.vmap(lambda x: x * x.item())(np.array([2.0, np.nan, 3.0])).tolist())
    """, timeout=60)
    first, second = out.split("\n")[:2]
    assert first == "[nan]"
    assert second == "[4.0, nan, 9.0]"


def test_grad_of_item_at_nan_is_nan_as_in_torch():
    torch = pytest.importorskip("torch")
    x = torch.tensor(float("nan"), dtype=torch.float64)
    expected = torch.func.grad(lambda x: x * x.item())(x)
    f = wb.grad(lambda x: x * x.item())
    for _ in range(2):  # traced, then from the cache
        assert np.isnan(f(float("nan"))) and torch.isnan(expected)
    assert float(f(3.0)) == 3.0  # a nan-guarded version is not served at 3.0
    assert np.isnan(f(float("nan")))


def test_vmap_grad_of_item_mixed_nan():
    out = run_isolated("""
        import warnings, numpy as np, workbench as wb
        warnings.simplefilter("ignore")
        print(wb.vmap(wb.grad(lambda x: x * x.item()))(np.array([1.0, np.nan, 3.0])).tolist())
    """, timeout=60)
    assert out.strip() == "[1.0, nan, 3.0]"  # d/dx x*c = c, the value x had


# ----- the size budget is checked from shapes, before anything is materialised -----

def test_huge_input_under_a_memory_cap_works_or_is_refused_clearly():
    # 5e7 float64 = 400 MB under a 1.2 GB address-space cap. Array-level transforms take it
    # when their arrays fit (and must then be right); where they do not fit, the error is a
    # BudgetExceededError saying what to do, never numpy's MemoryError. The element-level paths
    # (the scalar lowering behind wb.derivative, a scalar argument times a huge constant) refuse
    # it from its shape before copying anything.
    out = run_isolated("""
        import numpy as np, workbench as wb
        x = np.ones(int(5e7))
        calls = {
            "grad": lambda: wb.grad(lambda x: (x * x).sum())(x),
            "jacrev": lambda: wb.jacrev(lambda x: x.sum())(x),
            "vjp": lambda: wb.vjp(lambda x: x.sum(), x)[1](1.0)[0],
            "derivative": lambda: wb.derivative(lambda x: x.sum(), x),
            "constant": lambda: wb.grad(lambda y: (y * x).sum())(1.0),
        }
        expected = {"grad": 2.0, "jacrev": 1.0, "vjp": 1.0}
        for name, call in calls.items():
            try:
                value = call()
                ok = float(value.min()) == float(value.max()) == expected[name]
                print(name, "|", "right" if ok else "WRONG")
            except wb.BudgetExceededError as e:
                print(name, "|", e)
    """, timeout=180, memory_bytes=1_200_000_000)
    lines = dict(line.split(" | ", 1) for line in out.strip().split("\n"))
    assert set(lines) == {"grad", "jacrev", "vjp", "derivative", "constant"}, out
    for name in ("grad", "jacrev", "vjp"):
        assert lines[name] == "right" or ("out of memory" in lines[name] and
                                          "wb.tape" in lines[name]), lines[name]
    for name in ("derivative", "constant"):
        message = lines[name]
        assert "wb.config.max_nodes" in message and "wb.tape" in message and "vmap" in message


def test_budget_error_is_a_value_error_naming_the_argument():
    # The element level's budget (array-level traces count array operations instead).
    f = wb.grad(lambda weights, x: (weights * x).sum())
    old = wb.config.max_nodes, wb.config.array_level
    wb.config.max_nodes, wb.config.array_level = 1000, False
    try:
        with pytest.raises(ValueError, match="argument 'weights' of shape \\(2000,\\)"):
            f(np.ones(2000), np.ones(2000))
    finally:
        wb.config.max_nodes, wb.config.array_level = old


def test_vmap_is_the_way_around_the_budget():
    xs = np.linspace(-1.0, 1.0, 2 * 10**6).reshape(10**6, 2)
    out = wb.vmap(wb.grad(lambda x: (x ** 3).sum()))(xs)
    np.testing.assert_allclose(out, 3 * xs ** 2)


# ----- thread safety under contention -----

FUNCTIONS = [
    (lambda x: (np.sin(x) * x).sum(), lambda x: np.cos(x) * x + np.sin(x)),
    (lambda x: (x ** 3).sum(), lambda x: 3 * x ** 2),
    (lambda x: np.exp(-x * x).sum(), lambda x: -2 * x * np.exp(-x * x)),
    (lambda x: (np.where(x > 0, x, 0.5 * x) ** 2).sum(), lambda x: np.where(x > 0, 2 * x, 0.5 * x)),
]


def _hammer(worker, n_threads: int = 8) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(n_threads)

    def run(seed: int) -> None:
        try:
            start.wait()
            worker(seed)
        except BaseException as e:  # noqa: BLE001 - collected and reported by the test
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return errors


def test_grad_from_eight_threads_matches_the_closed_form():
    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for k in range(60):
            f, df = FUNCTIONS[(k + seed) % len(FUNCTIONS)]
            shape = [(), (3,), (2, 2)][(k // 4 + seed) % 3]
            x = rng.uniform(-2, 2, size=shape)
            x = float(x) if shape == () else x
            # a fresh lambda now and then: traces run concurrently, not only cached calls
            g = wb.grad(f) if k % 5 else wb.grad(lambda x, f=f: f(x))
            got = g(x)
            assert isinstance(got, (float, np.floating, np.ndarray)), type(got)
            np.testing.assert_allclose(got, df(np.asarray(x)), rtol=1e-12, atol=1e-12)

    errors = _hammer(worker)
    assert not errors, repr(errors[:3])


def test_vmap_and_jacrev_from_eight_threads():
    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for k in range(25):
            f, df = FUNCTIONS[(k + seed) % len(FUNCTIONS)]
            xs = rng.uniform(-2, 2, size=(5, 3))
            np.testing.assert_allclose(wb.vmap(wb.grad(f))(xs), df(xs), rtol=1e-12, atol=1e-12)
            jac = wb.jacrev(lambda x, f=f: x * f(x))(xs[0])
            expected = np.diag(np.full(3, f(xs[0]))) + np.outer(xs[0], df(xs[0]))
            np.testing.assert_allclose(jac, expected, rtol=1e-12, atol=1e-12)
            out, tangent = wb.jvp(f, (xs[1],), (np.ones(3),))
            np.testing.assert_allclose(tangent, df(xs[1]).sum(), rtol=1e-12)

    errors = _hammer(worker)
    assert not errors, repr(errors[:3])


def test_no_grad_in_one_thread_does_not_leak_into_another():
    go, inside, release = threading.Event(), threading.Event(), threading.Event()

    def holder() -> None:
        go.wait(30)
        with wb.no_grad():  # entered while the main thread is in the middle of a trace
            inside.set()
            release.wait(30)

    def f(x):
        go.set()
        inside.wait(30)
        return x ** 3

    t = threading.Thread(target=holder)
    t.start()
    try:
        got = float(wb.grad(f)(2.0))
    finally:
        release.set()
        t.join()
    assert got == 12.0  # 3 x^2: the other thread's no_grad is not this trace's


@pytest.fixture
def fast_thread_switching():
    """Switch threads every microsecond, so that traces really interleave."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def test_fresh_traces_interleaved_across_threads(fast_thread_switching):
    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for k in range(15):
            f, df = FUNCTIONS[(k + seed) % len(FUNCTIONS)]
            x = rng.uniform(-2, 2, size=4)
            got = wb.grad(lambda x, f=f: f(x))(x)  # a new function: traced every time
            assert isinstance(got, np.ndarray), type(got)
            np.testing.assert_allclose(got, df(x), rtol=1e-12, atol=1e-12)

    errors = _hammer(worker)
    assert not errors, repr(errors[:3])


# ----- the simplification deadline holds in any thread -----

def _slow_to_simplify(x):
    # Its derivative takes SymPy tens of seconds to search through (26 s measured here in a
    # worker thread, where the old SIGALRM deadline did not apply).
    return np.sqrt(1 + np.sin(x) ** 2) * np.arctan(x ** 3 + np.cos(x)) / (x ** 4 + 2 * x + 3)


def _derivative_in(where: str, budget: float):
    old = wb.config.simplify_seconds
    wb.config.simplify_seconds = budget
    out: dict = {}

    def run() -> None:
        start = time.perf_counter()
        try:
            out["d"] = wb.derivative(_slow_to_simplify)
        except BaseException as e:  # noqa: BLE001 - reported below
            out["error"] = e
        out["seconds"] = time.perf_counter() - start

    try:
        if where == "main":
            run()
        else:
            t = threading.Thread(target=run)
            t.start()
            t.join(120)
            assert not t.is_alive(), "wb.derivative in a thread ignored its deadline"
    finally:
        wb.config.simplify_seconds = old
    assert "error" not in out, out.get("error")
    return out["d"], out["seconds"]


@pytest.mark.parametrize("where", ["main", "thread"])
def test_simplification_deadline_holds_in_every_thread(where):
    import sympy

    budget = 0.3
    d, seconds = _derivative_in(where, budget)
    # A small multiple of the budget: tracing, the forward formula and printing come on top.
    assert seconds < 10 * budget + 2.0, seconds
    assert any("simplification stopped" in n for n in d.notes), d.notes
    # The result is still the derivative: SymPy's own diff of the same formula, evaluated.
    x = sympy.Symbol("x", real=True)
    exact = sympy.diff(sympy.sqrt(1 + sympy.sin(x) ** 2) * sympy.atan(x ** 3 + sympy.cos(x))
                       / (x ** 4 + 2 * x + 3), x)
    (symbol,) = d.expr.free_symbols
    for value in (-1.3, 0.2, 0.9, 2.5):
        got = float(d.expr.subs(symbol, value).evalf())
        assert got == pytest.approx(float(exact.subs(x, value).evalf()), rel=1e-10)


def _stubborn() -> None:
    """Busy for up to 30 s, swallowing every Exception (as SymPy's factor code does)."""
    start = time.perf_counter()
    while time.perf_counter() - start < 30:
        try:
            sum(range(1000))
        except Exception:  # noqa: BLE001, S112 - the point of the test
            continue


def test_deadline_can_end_a_body_that_swallows_exceptions_in_a_thread():
    from workbench.symbolic.simplify import _OutOfTime, within_deadline

    out: dict = {}

    def run() -> None:
        start = time.perf_counter()
        try:
            within_deadline(0.2, _stubborn)
        except _OutOfTime:
            out["stopped after"] = time.perf_counter() - start

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    assert out["stopped after"] < 5.0


def test_no_firing_escapes_the_deadline():
    """Many short deadlines, some hit and some not, each followed by other work that starts
    threads: no out-of-time exception may land outside a body (a watchdog left firing after
    its body ended would raise it in unrelated code, or in a thread being started)."""
    from workbench.symbolic.simplify import _OutOfTime, within_deadline

    stray: list[str] = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: stray.append(f"thread: {args.exc_type.__name__}")
    try:
        for k in range(150):
            try:
                within_deadline(0.002, lambda k=k: sum(range(5000 + 9000 * (k % 5))))
            except _OutOfTime:
                pass
            try:
                for _ in range(3):  # unrelated work, starting threads
                    t = threading.Thread(target=sum, args=(range(100),))
                    t.start()
                    t.join()
                    time.sleep(0.002)
            except _OutOfTime:
                stray.append(f"main thread after body {k}")
    finally:
        threading.excepthook = old_hook
    assert not stray, stray


def test_deadline_does_not_fire_into_a_garbage_collector_callback():
    """jax registers a gc callback; an exception raised inside one is printed as "ignored" and
    lost. The watchdog waits until the callback is over. There is an unavoidable race (the
    thread may enter a callback between the watchdog's look and the delivery), so on a loaded
    machine one firing in a few may still be lost; the deadline holds anyway (it fires again
    50 ms later). Without the check nearly every firing lands in the callback."""
    import gc

    runs = 4

    from workbench.symbolic.simplify import _OutOfTime, within_deadline

    def slow_callback(phase, info):
        start = time.perf_counter()
        while time.perf_counter() - start < 0.005:
            pass

    def allocating_body():
        while True:
            [[] for _ in range(2000)]  # container allocations: the collector (and callback) runs

    lost: list = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: lost.append(unraisable.exc_type)
    gc.callbacks.append(slow_callback)
    try:
        for _ in range(runs):
            with pytest.raises(_OutOfTime):  # the deadline holds, callbacks or not
                within_deadline(0.05, allocating_body)
    finally:
        gc.callbacks.remove(slow_callback)
        sys.unraisablehook = old_hook
    assert len(lost) < runs


def test_deadline_does_not_fire_into_a_weakref_finaliser():
    """Objects dying inside the simplification (a version cache collected, a user's
    ``weakref.finalize``) run their finalisers there; an exception raised inside one is printed
    as "ignored" and lost, and the finaliser's work is skipped. The watchdog waits until it is
    over (the same unavoidable race as with gc callbacks: one firing in a few may still land)."""
    import weakref

    from workbench.symbolic.simplify import _OutOfTime, within_deadline

    runs = 4

    class Dying:
        pass

    def slow_finaliser():
        start = time.perf_counter()
        while time.perf_counter() - start < 0.005:
            pass

    def dying_body():
        while True:
            weakref.finalize(Dying(), slow_finaliser)  # dies at once: its finaliser runs here
            start = time.perf_counter()
            while time.perf_counter() - start < 0.001:  # a little outside a finaliser
                pass

    lost: list = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: lost.append(unraisable.exc_type)
    try:
        for _ in range(runs):
            with pytest.raises(_OutOfTime):
                within_deadline(0.05, dying_body)
    finally:
        sys.unraisablehook = old_hook
    assert len(lost) < runs
