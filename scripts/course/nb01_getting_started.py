"""01 Getting started: the torch.func.grad reference examples beside their symbolic derivatives."""

from __future__ import annotations

from .cells import code, exercise, md, notebook, title

FILENAME = "01_getting_started.ipynb"


def build():
    return notebook("nb01", [
        title("Getting started: gradients you can read", [
            "compute gradients with `wb.grad`, which follows `torch.func.grad` (`argnums`, "
            "`has_aux`, nesting, `no_grad`);",
            "read the same gradient as a formula with `wb.derivative`, and the derivation rule by "
            "rule with `wb.steps`;",
            "check a gradient four ways with `wb.check` (symbolic, numeric tape, finite "
            "differences, torch);",
            "compute per-sample gradients with `vmap(grad(...))`.",
        ], intro="""
            This notebook walks through every example of the `torch.func.grad` documentation.
            Each one runs twice: numerically, with `wb.grad` on plain numpy code (the same
            semantics as torch), and symbolically, with `wb.derivative`, which shows the formula
            that the numbers come from. When PyTorch is installed, torch computes each example
            too, so you can see that the numbers agree.
        """),
        md("""
            ## Setting up

            `workbench` is imported as `wb`. A function you differentiate is ordinary numpy code:
            workbench calls it once on *traced* values, records the operations, differentiates
            them symbolically and compiles the result to plain numpy code, which is cached.
        """),
        code("""
            import numpy as np
            import sympy
            import workbench as wb

            try:  # torch is optional: when it is installed, it is the oracle for every example
                import torch
                from torch.func import grad as torch_grad, vmap as torch_vmap
                torch.set_default_dtype(torch.float64)
            except ImportError:
                torch = None
            print("torch:", torch.__version__ if torch else "not installed (comparisons skipped)")
        """),
        md("""
            ## 1. The gradient of sin is cos

            The reference:

            ```python
            x = torch.randn([])
            cos_x = grad(lambda x: torch.sin(x))(x)
            assert torch.allclose(cos_x, x.cos())
            ```

            In workbench, `np.sin` works on traced values, so the same line is plain numpy.
        """),
        code("""
            rng = np.random.default_rng(0)
            x = rng.standard_normal()

            cos_x = wb.grad(lambda x: np.sin(x))(x)
            assert np.isclose(cos_x, np.cos(x))
            if torch is not None:
                assert np.isclose(cos_x, torch_grad(torch.sin)(torch.tensor(x)).item())
            x, cos_x
        """),
        md("""
            Now the same derivative as a formula. With no example arguments, `wb.derivative`
            names each parameter after the function's own parameter (`x` here) and shows
            $\\frac{df}{dx}$ in LaTeX. The **size meter** under the formula counts the tree
            nodes of the formula and the operations left after common subexpressions are
            shared; notebook 3 explains why that matters.
        """),
        code("""
            d_sin = wb.derivative(lambda x: np.sin(x))
            x_sym = d_sin.symbols["x"]
            assert d_sin.expr == sympy.cos(x_sym)
            d_sin
        """),
        md("""
            ## 2. Second-order gradients

            `grad` returns an ordinary function, so it can be differentiated again:
            `grad(grad(sin))` is $-\\sin$. In `wb.derivative`, `order=2` asks for the second
            derivative directly.
        """),
        code("""
            neg_sin_x = wb.grad(wb.grad(lambda x: np.sin(x)))(x)
            assert np.isclose(neg_sin_x, -np.sin(x))
            if torch is not None:
                assert np.isclose(neg_sin_x, torch_grad(torch_grad(torch.sin))(torch.tensor(x)).item())
            neg_sin_x
        """),
        code("""
            d2_sin = wb.derivative(lambda x: np.sin(x), order=2)
            assert d2_sin.expr == -sympy.sin(d2_sin.symbols["x"])
            d2_sin
        """),
        md("""
            A less trivial function shows what the symbolic side adds: the product rule, visible
            in the result. `wb.steps` writes the derivation out rule by rule, the way you would
            on paper.
        """),
        code("""
            def f(x):
                return x * np.sin(x)

            d_f = wb.derivative(f)
            xs = d_f.symbols["x"]
            assert sympy.simplify(d_f.expr - (sympy.sin(xs) + xs * sympy.cos(xs))) == 0
            assert np.isclose(wb.grad(f)(x), float(d_f.expr.subs(xs, x)))
            d_f
        """),
        code("""
            wb.steps(f)
        """),
        md("""
            ## 3. Per-sample gradients: `vmap(grad(...))`

            The reference's model is a linear layer with a relu, and the loss is a squared error
            for **one** example. `grad(compute_loss)` is the gradient for one example; `vmap`
            maps it over the batch (`in_dims=(None, 0, 0)`: the weights are shared, examples and
            targets are batched along axis 0). Workbench compiles the per-example gradient once
            and evaluates it as one vectorised numpy call over the whole batch.
        """),
        code("""
            batch_size, feature_size = 3, 5

            def model(weights, feature_vec):
                # Very simple linear model with activation
                assert feature_vec.ndim == 1
                return wb.relu(feature_vec.dot(weights))

            def compute_loss(weights, example, target):
                y = model(weights, example)
                return ((y - target) ** 2).mean()  # MSELoss

            weights = rng.standard_normal(feature_size)
            examples = rng.standard_normal((batch_size, feature_size))
            targets = rng.standard_normal(batch_size)

            grad_weight_per_example = wb.vmap(wb.grad(compute_loss), in_dims=(None, 0, 0))(
                weights, examples, targets)
            assert grad_weight_per_example.shape == (batch_size, feature_size)
            grad_weight_per_example
        """),
        md("""
            A row of zeros is an example with $z = x \\cdot w < 0$: the relu is flat there, so
            that example does not move the weights at all. Three independent checks: the chain rule by hand
            ($\\nabla_w = 2(\\mathrm{relu}(z) - t)\\,[z > 0]\\,x$ with $z = x \\cdot w$),
            a Python loop of single-example gradients, and torch's own `vmap(grad(...))`.
        """),
        code("""
            z = examples @ weights
            by_hand = (2 * (np.maximum(z, 0) - targets) * (z > 0))[:, None] * examples
            assert np.allclose(grad_weight_per_example, by_hand)

            one_at_a_time = np.stack([wb.grad(compute_loss)(weights, e, t)
                                      for e, t in zip(examples, targets)])
            assert np.allclose(grad_weight_per_example, one_at_a_time)

            if torch is not None:
                def torch_loss(weights, example, target):
                    y = example.dot(weights).relu()
                    return ((y - target) ** 2).mean()

                torch_result = torch_vmap(torch_grad(torch_loss), in_dims=(None, 0, 0))(
                    torch.tensor(weights), torch.tensor(examples), torch.tensor(targets))
                assert np.allclose(grad_weight_per_example, torch_result.numpy())
            "all three agree"
        """),
        md("""
            The formula behind one row. The example arguments fix the shapes (five weights,
            five features, a scalar target), so the parameters become `weights_0`, ...,
            `example_0`, ... The indicator of $z > 0$ is relu's derivative, with torch's
            convention $\\mathrm{relu}'(0) = 0$ (notebook 6 is about such points).
        """),
        code("""
            wb.derivative(compute_loss, weights, examples[0], targets[0])
        """),
        md("""
            ## 4. `has_aux` and `argnums`

            `argnums=(0, 1)` differentiates with respect to both arguments and returns a tuple
            of gradients; `has_aux=True` lets the function return `(loss, anything)` and hands
            the second part back untouched.
        """),
        code("""
            def my_loss_func(y, y_pred):
                loss_per_sample = (0.5 * y_pred - y) ** 2
                loss = loss_per_sample.mean()
                return loss, (y_pred, loss_per_sample)

            fn = wb.grad(my_loss_func, argnums=(0, 1), has_aux=True)
            y_true = rng.random(4)
            y_preds = rng.random(4)
            (g_true, g_pred), (y_pred, loss_per_sample) = fn(y_true, y_preds)

            # d/dy of mean((y_pred/2 - y)^2) is -2 (y_pred/2 - y) / n, and -1/2 of that for y_pred
            assert np.allclose(g_true, -2 * (0.5 * y_preds - y_true) / 4)
            assert np.allclose(g_pred, (0.5 * y_preds - y_true) / 4)
            assert np.allclose(loss_per_sample, (0.5 * y_preds - y_true) ** 2)
            if torch is not None:
                (tg_true, tg_pred), _ = torch_grad(my_loss_func, argnums=(0, 1), has_aux=True)(
                    torch.tensor(y_true), torch.tensor(y_preds))
                assert np.allclose(g_true, tg_true.numpy()) and np.allclose(g_pred, tg_pred.numpy())
            g_true, g_pred
        """),
        md("""
            Symbolically: `wb.derivative` takes the same `argnums`. It differentiates the loss
            itself (a function with `has_aux` returns more than a number), so we give it the
            loss part.
        """),
        code("""
            def mean_loss(y, y_pred):
                return my_loss_func(y, y_pred)[0]

            d_loss = wb.derivative(mean_loss, y_true, y_preds, argnums=(0, 1))
            d_y, d_y_pred = d_loss.expr
            y0, p0 = d_loss.symbols["y"][0], d_loss.symbols["y_pred"][0]
            assert sympy.expand(d_y[0] - (y0 - p0 / 2) / 2) == 0
            d_loss
        """),
        md("""
            ## 5. `no_grad` inside the function

            Inside the function, `with wb.no_grad():` (or `torch.no_grad()`) turns what is
            computed there into a constant. So for $f(x) = x - c$ with $c = x^2$ computed under
            `no_grad`, the derivative is 1, not $1 - 2x$. Around a call of `grad(f)` it has no
            effect: `grad` is a function transform, its result depends only on `f`.
        """),
        code("""
            def f_no_grad(x):
                with wb.no_grad():
                    c = x ** 2
                return x - c

            assert wb.grad(f_no_grad)(3.0) == 1.0
            with wb.no_grad():
                assert wb.grad(f_no_grad)(3.0) == 1.0   # the outer no_grad is ignored
            if torch is not None:
                def torch_f(x):
                    with torch.no_grad():
                        c = x ** 2
                    return x - c
                assert torch_grad(torch_f)(torch.tensor(3.0)).item() == 1.0
            wb.trace(f_no_grad)
        """),
        code("""
            d_no_grad = wb.derivative(f_no_grad)
            assert d_no_grad.expr == 1
            d_no_grad
        """),
        md("""
            ## 6. Trust, but verify: `wb.check`

            `wb.check(f, x)` computes the gradient four ways: the symbolic result, an
            independent numeric tape (reverse mode over numpy, sharing no derivative code with
            the symbolic side), central finite differences, and `torch.func.grad` when torch is
            installed and the function runs on tensors (use `wb.sin` rather than `np.sin` for
            that: `wb.*` functions accept torch tensors too).
        """),
        code("""
            report = wb.check(lambda x: wb.sin(x) * x, 1.3)
            assert report.passed
            report
        """),
        md("""
            ## Summary: the examples side by side
        """),
        code("""
            from IPython.display import Markdown

            rows = [
                ("sin", wb.grad(lambda x: np.sin(x))(x), d_sin),
                ("sin, second order", wb.grad(wb.grad(lambda x: np.sin(x)))(x), d2_sin),
                ("x sin x", wb.grad(f)(x), d_f),
                ("x - no_grad(x²)", wb.grad(f_no_grad)(x), d_no_grad),
            ]
            lines = [f"| function | `wb.grad` at x = {x:.3f} | `wb.derivative` |", "|---|---|---|"]
            for name, value, d in rows:
                symbol = d.symbols["x"]
                assert np.isclose(value, float(d.expr.subs(symbol, x)))  # numbers = formula
                lines.append(f"| {name} | {value:.6f} | ${d.latex()}$ |")
            Markdown("\\n".join(lines))
        """),
        md("""
            ## Exercises
        """),
        exercise(1, """
            Compute the derivative of $\\tanh$ with `wb.derivative` and show that it equals
            $1 - \\tanh^2 x$ (hint: `sympy.simplify` of the difference). Then check `wb.grad`
            against that formula at a few points.
        """, """
            d_tanh = wb.derivative(lambda x: np.tanh(x))
            t = d_tanh.symbols["x"]
            assert sympy.simplify(d_tanh.expr - (1 - sympy.tanh(t) ** 2)) == 0
            for point in (-2.0, 0.0, 0.7):
                assert np.isclose(wb.grad(lambda x: np.tanh(x))(point), 1 - np.tanh(point) ** 2)
            d_tanh
        """),
        exercise(2, """
            For $g(x, y) = x y^2$, compute $\\partial g / \\partial y$ at $(x, y) = (3, 2)$ with
            `argnums=1`, and the formula with `wb.derivative(g, argnums=1)`. What do you
            expect?
        """, """
            def g(x, y):
                return x * y ** 2

            assert np.isclose(wb.grad(g, argnums=1)(3.0, 2.0), 2 * 3.0 * 2.0)  # 2xy = 12
            d_g = wb.derivative(g, argnums=1)
            assert d_g.expr == 2 * d_g.symbols["x"] * d_g.symbols["y"]
            d_g
        """),
        exercise(3, """
            Nest `wb.grad` three times to get the third derivative of $\\sin$ at $x = 0.4$.
            Which function is it? Confirm it with a formula: a gradient is an ordinary function,
            so `wb.derivative(sin_prime, order=2)` of `sin_prime = wb.grad(np.sin)` is the
            third derivative of $\\sin$.
        """, """
            third = wb.grad(wb.grad(wb.grad(np.sin)))(0.4)
            assert np.isclose(third, -np.cos(0.4))

            def sin_prime(x):
                return wb.grad(np.sin)(x)

            d3 = wb.derivative(sin_prime, order=2)
            assert d3.expr == -sympy.cos(d3.symbols["x"])
            d3
        """),
    ])
