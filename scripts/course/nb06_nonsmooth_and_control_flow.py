"""06 Non-smooth points and control flow: kinks, torch's conventions, guards, wb.check there."""

from __future__ import annotations

from .cells import code, exercise, md, notebook, title

FILENAME = "06_nonsmooth_and_control_flow.ipynb"


def build():
    return notebook("nb06", [
        title("Non-smooth points and control flow", [
            "say what the one-sided derivatives of relu, abs and max are at their kinks, and "
            "which value torch (and workbench) return there;",
            "explain why finite differences disagree with any gradient exactly at a kink, and "
            "read what `wb.check` reports there;",
            "predict what `wb.grad` does with an `if` on a traced value (guards, re-tracing) and "
            "why `vmap` prefers `np.where`;",
            "avoid the classic `where` pitfall that turns a gradient into `nan`.",
        ], intro="""
            Real models are full of points where the derivative does not exist: relu at 0, abs
            at 0, a max of two equal values, the boundary of an `if`. Mathematics offers a set
            of slopes there (the subdifferential); an autodiff system has to return **one**
            number. Workbench returns torch's number at each of them, and says so.
        """),
        code("""
            import warnings

            import numpy as np
            import workbench as wb

            try:  # torch, when installed, is the oracle for every convention below
                import torch
                from torch.func import grad as torch_grad
                torch.set_default_dtype(torch.float64)
            except ImportError:
                torch = None

            def one_sided(f, x, h=1e-6):
                \"\"\"(left, right) difference quotients of f at x.\"\"\"
                return (f(x) - f(x - h)) / h, (f(x + h) - f(x)) / h
        """),
        md("""
            ## Kinks: relu, abs, max

            At $x = 0$, relu has slope 0 on the left and 1 on the right; **any** value in
            $[0, 1]$ is a valid subgradient. torch picks $\\mathrm{relu}'(0) = 0$.
            For abs, the slopes are $-1$ and $+1$ and torch picks $\\mathrm{abs}'(0) = 0$
            (the middle of the subdifferential, and `sign(0) = 0`).
        """),
        code("""
            relu_slopes = one_sided(lambda x: max(x, 0.0), 0.0)
            abs_slopes = one_sided(abs, 0.0)
            assert np.allclose(relu_slopes, (0, 1)) and np.allclose(abs_slopes, (-1, 1))

            d_relu = wb.grad(wb.relu)
            d_abs = wb.grad(wb.abs)
            print("relu'(-1), relu'(0), relu'(1) =", d_relu(-1.0), d_relu(0.0), d_relu(1.0))
            print("abs'(-1),  abs'(0),  abs'(1)  =", d_abs(-1.0), d_abs(0.0), d_abs(1.0))
            assert (d_relu(-1.0), d_relu(0.0), d_relu(1.0)) == (0.0, 0.0, 1.0)
            assert (d_abs(-1.0), d_abs(0.0), d_abs(1.0)) == (-1.0, 0.0, 1.0)
            if torch is not None:
                zero = torch.tensor(0.0)
                assert torch_grad(torch.relu)(zero).item() == d_relu(0.0)
                assert torch_grad(torch.abs)(zero).item() == d_abs(0.0)
        """),
        md("""
            The symbolic derivative writes the convention into the formula: relu's derivative is
            the indicator $1[x > 0]$ (0 at 0), abs's is `sign(x)` (0 at 0); a note under each
            formula states torch's value at the kink.
        """),
        code("""
            d_relu_formula = wb.derivative(lambda x: wb.relu(x))
            assert any("torch" in note for note in d_relu_formula.notes)
            d_relu_formula
        """),
        code("""
            d_abs_formula = wb.derivative(lambda x: wb.abs(x))
            assert any("torch" in note for note in d_abs_formula.notes)
            d_abs_formula
        """),
        md("""
            **Ties of max.** $\\max(x, y)$ at $x = y$: the gradient is $(1, 0)$ from one side
            and $(0, 1)$ from the other. torch splits it evenly: $(\\frac12, \\frac12)$. The same
            holds for a reduction: the maximum of `[1, 3, 3]` sends half of the gradient to
            each 3. (This makes $\\max(x, x) = x$ have derivative 1, as it should.)
        """),
        code("""
            gx, gy = wb.grad(lambda x, y: np.maximum(x, y), argnums=(0, 1))(2.0, 2.0)
            assert (gx, gy) == (0.5, 0.5)
            assert wb.grad(lambda x: np.maximum(x, x))(2.0) == 1.0

            g_reduce = wb.grad(lambda v: np.max(v))(np.array([1.0, 3.0, 3.0]))
            assert np.array_equal(g_reduce, [0.0, 0.5, 0.5])
            if torch is not None:
                t = torch_grad(lambda v: v.max())(torch.tensor([1.0, 3.0, 3.0]))
                assert np.array_equal(g_reduce, t.numpy())
            (gx, gy), g_reduce
        """),
        md("""
            Two more conventions worth knowing: `clip(x, lo, hi)` has gradient 1 on the
            **closed** interval $[lo, hi]$ (so also at the bounds), and $\\sqrt{x}$ has
            derivative $+\\infty$ at 0, not an error.
        """),
        code("""
            d_clip = wb.grad(lambda x: np.clip(x, 0.0, 1.0))
            assert [d_clip(v) for v in (-0.5, 0.0, 0.5, 1.0, 1.5)] == [0.0, 1.0, 1.0, 1.0, 0.0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                assert wb.grad(np.sqrt)(0.0) == np.inf
            if torch is not None:
                assert torch_grad(lambda x: torch.clamp(x, 0.0, 1.0))(torch.tensor(1.0)).item() == 1.0
                assert torch_grad(torch.sqrt)(torch.tensor(0.0)).item() == np.inf
            "clip and sqrt follow torch"
        """),
        md("""
            ## What `wb.check` says at a kink

            Central finite differences average the two one-sided slopes: at relu's kink they
            give $\\frac{0 + 1}{2} = 0.5$, while every autodiff system says 0. Neither is
            wrong; the derivative does not exist there. `wb.check` finds the kink on the numeric
            tape, reports it, and marks the finite-difference disagreement as **expected**;
            the symbolic result, the tape and torch must still agree exactly.
        """),
        code("""
            at_kink = wb.check(lambda x: wb.relu(x) * 3.0, 0.0)
            methods = {m.method: m for m in at_kink.inputs[0].methods}
            assert at_kink.passed and at_kink.kinks
            assert methods["finite differences"].status == "expected"
            assert methods["tape"].status == "pass"
            at_kink
        """),
        md("""
            A little away from the kink, everything agrees and there is nothing to report:
        """),
        code("""
            near_kink = wb.check(lambda x: wb.relu(x) * 3.0, 0.01)
            assert near_kink.passed and not near_kink.kinks
            assert all(m.status in ("pass", "n/a") for m in near_kink.inputs[0].methods)
            near_kink
        """),
        md("""
            ## Python control flow: guards

            An `if` on a traced value is allowed. Workbench records the comparison's outcome as
            a **guard**: the compiled gradient is reused only where every guard holds, and the
            function is traced again when an input takes the other branch. `wb.derivative`
            shows the guard under the formula ("traced where ...").
        """),
        code("""
            def piecewise(x):
                if x > 1:
                    return x ** 2
                return 2 * x - 1

            d_right = wb.derivative(piecewise, 3.0)
            d_left = wb.derivative(piecewise, 0.0)
            x_sym = d_right.symbols["x"]
            assert d_right.expr == 2 * x_sym and d_left.expr == 2
            assert [str(g) for g in d_right.guards] == ["x > 1"]
            d_right
        """),
        code("""
            d_left
        """),
        md("""
            `wb.grad` takes the right branch for every input, tracing each branch once:
        """),
        code("""
            g = wb.grad(piecewise)
            values = [float(g(v)) for v in (-2.0, 0.5, 1.0, 2.0, 3.0)]
            assert values == [2.0, 2.0, 2.0, 4.0, 6.0]  # 2 for x <= 1, 2x for x > 1
            values
        """),
        md("""
            This function and its derivative are continuous at 1, so `wb.check` passes there
            too (it notes that the branch switches at that point). A function that **jumps** at
            its `if` is another matter: the one-sided derivatives exist (both are $2x$) but
            finite differences see the jump and return something huge. `wb.check` says why.
        """),
        code("""
            def jump(x):
                if x > 0:
                    return x ** 2
                return x ** 2 + 1

            assert wb.check(piecewise, 1.0).passed

            at_jump = wb.check(jump, 0.0)
            fd = {m.method: m for m in at_jump.inputs[0].methods}["finite differences"]
            assert at_jump.passed and fd.status == "expected" and fd.max_abs > 1e3
            at_jump
        """),
        md("""
            ## Control flow under `vmap`

            Under `vmap`, different examples may take different branches. Workbench groups the
            examples by branch, evaluates each group with its own compiled version and warns
            once. `np.where(cond, a, b)` computes both branches as data and selects, which
            keeps the batch in one vectorised evaluation.
        """),
        code("""
            xs = np.array([-2.0, 0.5, 2.0, 3.0])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with_if = wb.vmap(wb.grad(piecewise))(xs)
            print(caught[0].message if caught else "no warning")
            assert caught and np.array_equal(with_if, [2.0, 2.0, 4.0, 6.0])

            def piecewise_where(x):
                return np.where(x > 1, x ** 2, 2 * x - 1)

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with_where = wb.vmap(wb.grad(piecewise_where))(xs)
            assert not caught and np.array_equal(with_where, with_if)
            with_where
        """),
        md("""
            ## Escaping the trace: `float()` and `.item()`

            `float(x)` or `math.sin(x)` on a traced value would drop its gradient without a
            word, so workbench refuses them with an explanation. `x.item()` is allowed (as in
            torch): it returns the value as a constant, and the compiled result is guarded on
            that value.
        """),
        code("""
            import math

            try:
                wb.grad(lambda x: math.sin(x))(1.0)
                raise AssertionError("math.sin on a traced value should be refused")
            except wb.TracedConversionError as error:
                print(error)
        """),
        md("""
            ## The `where` pitfall: a `nan` gradient

            `np.where(x > 0, np.sqrt(x), 0.0)` has value 0 for $x \\le 0$, but its gradient at
            $x = -1$ is `nan`, in workbench as in torch and JAX. Reverse mode computes the
            gradient of **both** branches and multiplies the unused one by 0, and
            $0 \\cdot \\frac{1}{2\\sqrt{-1}} = 0 \\cdot \\mathrm{nan} = \\mathrm{nan}$.
            The fix is a second `where` that feeds the unused branch a safe input.
        """),
        code("""
            def unsafe(x):
                return np.where(x > 0, np.sqrt(x), 0.0)

            def safe(x):
                x_safe = np.where(x > 0, x, 1.0)  # the sqrt branch never sees x <= 0
                return np.where(x > 0, np.sqrt(x_safe), 0.0)

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                unsafe_grad = wb.grad(unsafe)(-1.0)
            assert np.isnan(unsafe_grad)
            if torch is not None:
                assert torch_grad(lambda x: torch.where(x > 0, torch.sqrt(x), 0.0))(
                    torch.tensor(-1.0)).isnan()
            assert wb.grad(safe)(-1.0) == 0.0 and np.isclose(wb.grad(safe)(4.0), 0.25)
            unsafe_grad, wb.grad(safe)(-1.0)
        """),
        md("""
            ## Exercises
        """),
        exercise(1, """
            The hinge loss of a classifier is $\\max(0, 1 - t z)$. For $t = 1$, what are the
            one-sided derivatives with respect to $z$ at the margin $z = 1$, and which value
            does `wb.grad` return (with `wb.relu(1 - t * z)`)? Predict first, then check with
            `one_sided`, `wb.grad` and `wb.check`.
        """, """
            def hinge(z, t=1.0):
                return wb.relu(1 - t * z)

            left, right = one_sided(lambda z: max(0.0, 1 - z), 1.0)
            assert np.allclose((left, right), (-1, 0))
            assert wb.grad(hinge)(1.0) == 0.0  # relu'(0) = 0: the right-hand slope here
            report = wb.check(hinge, 1.0)
            assert report.passed and report.kinks
            report
        """),
        exercise(2, """
            `softplus(x) = log(1 + e^x)` is a smooth relu. Show that its derivative at 0 is
            $\\frac12$ (the sigmoid), and that `wb.check` finds no kink there.
        """, """
            assert np.isclose(wb.grad(wb.softplus)(0.0), 0.5)
            smooth = wb.check(wb.softplus, 0.0)
            assert smooth.passed and not smooth.kinks
            wb.derivative(lambda x: wb.softplus(x))
        """),
        exercise(3, """
            Rewrite `jump` with `np.where` so that `vmap(grad(...))` over
            `np.linspace(-1, 1, 5)` runs without a warning, and check the result is $2x$.
        """, """
            def jump_where(x):
                return np.where(x > 0, x ** 2, x ** 2 + 1)

            points = np.linspace(-1, 1, 5)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = wb.vmap(wb.grad(jump_where))(points)
            assert not caught and np.allclose(result, 2 * points)
            result
        """),
    ])
