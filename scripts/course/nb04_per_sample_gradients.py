"""04 Per-sample gradients with vmap(grad), and a logistic regression trained with them."""

from __future__ import annotations

from .cells import code, exercise, md, notebook, title

FILENAME = "04_per_sample_gradients.ipynb"


def build():
    return notebook("nb04", [
        title("Per-sample gradients with `vmap`", [
            "explain what a per-sample gradient is and how it differs from the gradient of a "
            "batch's mean loss;",
            "write a loss for **one** example and turn it into per-sample gradients with "
            "`wb.vmap(wb.grad(loss), in_dims=...)`;",
            "verify per-sample gradients three ways: a Python loop, the batch gradient, and a "
            "formula;",
            "train a logistic regression with per-sample gradients, and clip them per example "
            "(the core of differentially private SGD).",
        ], intro="""
            Training usually needs only the gradient of the *mean* loss over a batch. Some
            methods need one gradient *per example*: per-example clipping (differentially
            private SGD), finding the examples that pull hardest on a model, influence
            estimates, gradient-variance diagnostics. Written as a loop, that is one backward
            pass per example. `vmap` turns a function of one example into a function of a batch.
        """),
        code("""
            import numpy as np
            import workbench as wb

            rng = np.random.default_rng(42)
        """),
        md("""
            ## The reference's example

            From the `torch.func.grad` documentation: a linear model with a relu and a squared
            error, written for **one** feature vector (the `assert` makes sure of that).
            `in_dims=(None, 0, 0)` says: the weights are shared by every example, and
            `examples` and `targets` are batched along their first axis.
        """),
        code("""
            batch_size, feature_size = 8, 5

            def model(weights, feature_vec):
                assert feature_vec.ndim == 1  # written for a single example
                return wb.relu(feature_vec.dot(weights))

            def compute_loss(weights, example, target):
                y = model(weights, example)
                return ((y - target) ** 2).mean()

            weights = rng.standard_normal(feature_size)
            examples = rng.standard_normal((batch_size, feature_size))
            targets = rng.standard_normal(batch_size)

            per_sample_grad = wb.vmap(wb.grad(compute_loss), in_dims=(None, 0, 0))
            grads = per_sample_grad(weights, examples, targets)
            grads.shape
        """),
        md("""
            One row per example, one column per weight. Three checks, each independent of
            `vmap`:

            1. a Python loop over the examples gives the same rows;
            2. the **mean** of the rows is the gradient of the batch's mean loss (the gradient
               is linear);
            3. the chain rule by hand: $\\nabla_w \\ell = 2(\\mathrm{relu}(z) - t)\\,[z > 0]\\,x$
               with $z = x \\cdot w$.
        """),
        code("""
            loop = np.stack([wb.grad(compute_loss)(weights, x, t) for x, t in zip(examples, targets)])
            assert np.allclose(grads, loop)

            def batch_loss(weights, examples, targets):
                return ((wb.relu(examples @ weights) - targets) ** 2).mean()

            assert np.allclose(grads.mean(axis=0), wb.grad(batch_loss)(weights, examples, targets))

            z = examples @ weights
            assert np.allclose(grads, (2 * (np.maximum(z, 0) - targets) * (z > 0))[:, None] * examples)
            "three checks pass"
        """),
        md("""
            The per-example gradient is one small formula, compiled once and evaluated for the
            whole batch by numpy. Here it is for one example, in the names of the function's
            parameters:
        """),
        code("""
            wb.derivative(compute_loss, weights, examples[0], targets[0])
        """),
        md("""
            ## Logistic regression, trained with per-sample gradients

            Two classes in the plane, a linear model $p = \\sigma(w \\cdot x + b)$ and the
            cross-entropy loss of **one** example,

            $$\\ell(w, b; x, t) = -t \\log p - (1 - t) \\log (1 - p)
              = \\operatorname{softplus}(z) - t z, \\quad z = w \\cdot x + b .$$

            The second form is the same function, written so that it cannot overflow or take
            $\\log 0$: use it in code. The parameters are a tuple `(w, b)`: `wb.grad`
            differentiates pytrees (tuples, lists, dicts), and the gradient has the same
            structure.
        """),
        code("""
            n_per_class = 100
            centre = np.array([1.5, 1.0])
            X = np.concatenate([rng.normal(size=(n_per_class, 2)) + centre,
                                rng.normal(size=(n_per_class, 2)) - centre])
            T = np.concatenate([np.ones(n_per_class), np.zeros(n_per_class)])

            def example_loss(params, x, t):
                w, b = params
                z = x @ w + b
                return wb.softplus(z) - t * z

            per_example = wb.vmap(wb.grad(example_loss), in_dims=(None, 0, 0))
            params = (np.zeros(2), 0.0)
            gw, gb = per_example(params, X, T)
            gw.shape, gb.shape
        """),
        md("""
            Before training on it, check the gradient of one example against the formula you
            can derive by hand, $\\partial \\ell / \\partial z = \\sigma(z) - t$, so
            $\\nabla_w \\ell = (\\sigma(z) - t)\\,x$ and $\\partial \\ell / \\partial b = \\sigma(z) - t$,
            at a random point:
        """),
        code("""
            w_test, b_test = rng.standard_normal(2), 0.3
            z_test = X @ w_test + b_test
            sigma = 1 / (1 + np.exp(-z_test))
            gw_test, gb_test = per_example((w_test, b_test), X, T)
            assert np.allclose(gw_test, (sigma - T)[:, None] * X)
            assert np.allclose(gb_test, sigma - T)
            "per-example gradients match the formula"
        """),
        md("""
            Gradient descent: 300 steps, each one call of the compiled per-example gradient for
            all 200 examples, then the mean. The loss must go down and the accuracy must end up
            high (the two clouds overlap a little, so not 100%).
        """),
        code("""
            def mean_loss(params):
                w, b = params
                z = X @ w + b
                return np.mean(np.logaddexp(0, z) - T * z)

            def accuracy(params):
                w, b = params
                return np.mean((X @ w + b > 0) == (T == 1))

            params = (np.zeros(2), 0.0)
            learning_rate = 0.5
            history = [mean_loss(params)]
            for step in range(300):
                gw, gb = per_example(params, X, T)
                params = (params[0] - learning_rate * gw.mean(axis=0),
                          params[1] - learning_rate * gb.mean())
                history.append(mean_loss(params))

            final_accuracy = accuracy(params)
            print(f"loss {history[0]:.4f} -> {history[-1]:.4f}; accuracy {final_accuracy:.1%}")
            print("w =", params[0].round(3), " b =", round(float(params[1]), 3))
            assert history[-1] < 0.5 * history[0]
            assert np.all(np.diff(history) <= 1e-12)  # a small enough step never increases the loss
            assert final_accuracy > 0.9
        """),
        md("""
            The decision boundary $w \\cdot x + b = 0$ is a line. The examples with the
            largest gradient norms are the ones the model gets most wrong: per-sample
            gradients point at them directly.
        """),
        code("""
            import matplotlib.pyplot as plt

            gw, gb = per_example(params, X, T)
            norms = np.sqrt((gw ** 2).sum(axis=1) + gb ** 2)
            hardest = np.argsort(norms)[-5:]

            fig, ax = plt.subplots(figsize=(5, 4))
            ax.scatter(*X[T == 1].T, s=12, label="class 1")
            ax.scatter(*X[T == 0].T, s=12, label="class 0")
            ax.scatter(*X[hardest].T, s=80, facecolors="none", edgecolors="k",
                       label="largest per-sample gradient")
            xs = np.linspace(X[:, 0].min(), X[:, 0].max(), 2)
            w, b = params
            ax.plot(xs, -(w[0] * xs + b) / w[1], "k--", label="decision boundary")
            ax.set_xlabel("$x_0$")
            ax.set_ylabel("$x_1$")
            ax.legend(fontsize=8)
            plt.close(fig)  # shown once, below, as the cell's result
            margins = (X[hardest] @ w + b) * np.where(T[hardest] == 1, 1, -1)
            assert np.all(margins < np.median((X @ w + b) * np.where(T == 1, 1, -1)))
            fig
        """),
        md("""
            ## Exercises
        """),
        exercise(1, """
            Per-example **clipping**, the heart of differentially private SGD: scale each
            example's gradient $(\\nabla_w \\ell, \\partial_b \\ell)$ down to norm at most
            $C = 0.5$ before taking the mean. Train 300 steps from zero with clipped gradients
            and report the accuracy. Why could this not be done with the gradient of the mean
            loss alone?
        """, """
            C = 0.5
            clipped_params = (np.zeros(2), 0.0)
            for step in range(300):
                gw, gb = per_example(clipped_params, X, T)
                norm = np.sqrt((gw ** 2).sum(axis=1) + gb ** 2)
                scale = np.minimum(1.0, C / np.maximum(norm, 1e-12))
                clipped_params = (clipped_params[0] - learning_rate * (scale[:, None] * gw).mean(axis=0),
                                  clipped_params[1] - learning_rate * (scale * gb).mean())
            print(f"accuracy with clipping: {accuracy(clipped_params):.1%}")
            assert accuracy(clipped_params) > 0.9
            # The mean of the gradients has lost which example contributed what: each example
            # has to be clipped before the mean is taken.
        """),
        exercise(2, """
            Add an L2 penalty $\\frac{\\lambda}{2} \\lVert w \\rVert^2$ with $\\lambda = 0.1$ to
            `example_loss`. Predict how every per-sample gradient changes, then confirm it
            with `per_example` at the trained parameters.
        """, """
            lam = 0.1

            def example_loss_l2(params, x, t):
                w, b = params
                return example_loss(params, x, t) + lam / 2 * (w ** 2).sum()

            gw, gb = per_example(params, X, T)
            gw_l2, gb_l2 = wb.vmap(wb.grad(example_loss_l2), in_dims=(None, 0, 0))(params, X, T)
            assert np.allclose(gw_l2 - gw, lam * params[0])  # every row moves by lambda * w
            assert np.allclose(gb_l2, gb)                     # b is not penalised
            (gw_l2 - gw)[:3]
        """),
        exercise(3, """
            `in_dims` decides what is batched. Compute the gradient with respect to the
            **input** `x` of every example (a saliency map for each example) with
            `wb.vmap(wb.grad(example_loss, argnums=1), in_dims=(None, 0, 0))`, and check it
            against $(\\sigma(z) - t)\\,w$.
        """, """
            input_grads = wb.vmap(wb.grad(example_loss, argnums=1), in_dims=(None, 0, 0))(params, X, T)
            w, b = params
            z = X @ w + b
            assert np.allclose(input_grads, (1 / (1 + np.exp(-z)) - T)[:, None] * w)
            input_grads[:3]
        """),
    ])
