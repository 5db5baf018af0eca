"""07 Gradients as matrix formulas: least squares, softmax regression, an MLP's backprop."""

from __future__ import annotations

from .cells import code, exercise, md, notebook, title

FILENAME = "07_gradients_as_matrix_formulas.ipynb"


def build():
    return notebook("nb07", [
        title("Gradients as matrix formulas", [
            "read the gradient of an array program in matrix notation (ᵀ, ⊙, 𝟙[·], softmax, "
            "onehot) and check it against numbers;",
            "derive the gradient of a layer by the matrix chain rule, one array operation at a "
            "time, with `wb.steps`;",
            "write backpropagation for a two-layer network by hand from the formulas "
            "workbench shows, and verify it;",
            "recognise programs that have no closed matrix form, and what workbench shows "
            "instead.",
        ], intro="""
            Textbooks write the gradient of a loss over arrays as a matrix formula:
            $\\nabla_w \\tfrac12\\lVert Xw - y\\rVert^2 = X^\\top(Xw - y)$. Autodiff libraries give
            you the numbers, not the formula. For a numpy function of arrays, `wb.derivative`
            shows the formula, derived from the traced program (not typed in), and
            `wb.grad` computes the same gradient as compiled numpy code.
        """),
        code("""
            import numpy as np
            import workbench as wb

            rng = np.random.default_rng(7)
        """),
        md("""
            ## Least squares

            A plain numpy function of a weight vector `w`, a data matrix `X` and targets `y`.
            Shapes come from the example arguments.
        """),
        code("""
            def least_squares(w, X, y):
                r = X @ w - y
                return 0.5 * np.sum(r * r)

            w, X, y = rng.normal(size=3), rng.normal(size=(20, 3)), rng.normal(size=20)
            d = wb.derivative(least_squares, w, X, y)
            d
        """),
        md("""
            The formula is a SymPy matrix expression (`d.matrix`), so it can be evaluated,
            printed as LaTeX, or compared with what you expect. The numbers from `wb.grad`
            must agree with the formula computed by hand in numpy:
        """),
        code("""
            assert str(d.matrix) == "X.T*(X*w - y)"
            assert np.allclose(wb.grad(least_squares)(w, X, y), X.T @ (X @ w - y))
            "the formula and the compiled gradient agree"
        """),
        md("""
            ## A quadratic form

            $f(x) = x^\\top A x$ for a square matrix $A$ that is **not** symmetric. The product
            rule gives two terms, $A x$ and $A^\\top x$, which workbench collects:
        """),
        code("""
            A = rng.normal(size=(4, 4))
            x = rng.normal(size=4)
            quadratic = wb.derivative(lambda x, A: x @ A @ x, x, A)
            assert str(quadratic.matrix) == "(A + A.T)*x"
            assert np.allclose(wb.grad(lambda x, A: x @ A @ x)(x, A), (A + A.T) @ x)
            quadratic
        """),
        md("""
            ## Softmax regression with integer labels

            Three classes, a linear model $Z = XW$ and the mean cross-entropy of the correct
            classes. The labels are integers, picked out with `log_p[np.arange(n), labels]`,
            and each row's maximum is subtracted first so that `exp` cannot overflow (how the
            loss is written in practice). The maximum's subgradient meets
            $1 - \\mathbf{1}^\\top\\operatorname{softmax}(z) = 0$ and drops out, so the
            textbook formula remains:
            $\\nabla_W = \\tfrac1n X^\\top(\\operatorname{softmax}(XW) - \\operatorname{onehot}(Y))$.
        """),
        code("""
            n, n_features, n_classes = 30, 2, 3
            centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
            labels = rng.integers(0, n_classes, size=n)
            features = centres[labels] + 0.8 * rng.normal(size=(n, n_features))

            def cross_entropy(W, X, Y):
                Z = X @ W
                Z = Z - Z.max(axis=1, keepdims=True)
                log_p = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
                return -np.mean(log_p[np.arange(len(Y)), Y])

            W = np.zeros((n_features, n_classes))
            ce = wb.derivative(cross_entropy, W, features, labels)
            assert str(ce).startswith(f"∇_W cross_entropy = 1/{n}*X.T*(softmax(X*W) - onehot(Y))")
            ce
        """),
        md("""
            Check the formula with numbers at a random $W$: softmax row by row, one-hot rows
            from the labels.
        """),
        code("""
            def softmax_rows(Z):
                e = np.exp(Z - Z.max(axis=1, keepdims=True))
                return e / e.sum(axis=1, keepdims=True)

            W_test = rng.normal(size=(n_features, n_classes))
            by_hand = features.T @ (softmax_rows(features @ W_test) - np.eye(n_classes)[labels]) / n
            assert np.allclose(wb.grad(cross_entropy)(W_test, features, labels), by_hand)
            "matches the formula"
        """),
        md("""
            Training is then a loop of compiled gradient calls: the first call traces the
            function, later calls run the compiled numpy program.
        """),
        code("""
            grad_ce = wb.grad(cross_entropy)
            W = np.zeros((n_features, n_classes))
            losses = [cross_entropy(W, features, labels)]
            for step in range(200):
                W = W - 0.5 * grad_ce(W, features, labels)
                losses.append(cross_entropy(W, features, labels))
            accuracy = np.mean(np.argmax(features @ W, axis=1) == labels)
            print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, accuracy {accuracy:.0%}")
            assert losses[-1] < 0.5 * losses[0] and accuracy > 0.8
        """),
        md("""
            ## Backpropagation of a two-layer network

            A hidden layer with a relu, then a linear layer and the same loss. With several
            `argnums`, `wb.derivative` shows every gradient, with the shared intermediate
            results named $Z_1, Z_2, \\ldots$: that **is** backpropagation, read off the program.
            The indicator $\\mathbb{1}[Z_1 > 0]$ is relu's derivative; at exactly 0 workbench
            follows torch's convention (stated under the formula).
        """),
        code("""
            def mlp_loss(W1, b1, W2, b2, X, Y):
                H = np.maximum(X @ W1 + b1, 0.0)
                Z = H @ W2 + b2
                Z = Z - Z.max(axis=1, keepdims=True)
                return -np.mean((Z - np.log(np.exp(Z).sum(axis=1, keepdims=True)))[np.arange(len(Y)), Y])

            hidden = 5
            W1, b1 = rng.normal(size=(n_features, hidden)), rng.normal(size=hidden)
            W2, b2 = rng.normal(size=(hidden, n_classes)), rng.normal(size=n_classes)
            backprop = wb.derivative(mlp_loss, W1, b1, W2, b2, features, labels, argnums=(0, 1, 2, 3))
            backprop
        """),
        md("""
            The same formulas as numpy code written by hand. Each line is one of the formulas
            above; the result must equal `wb.grad`'s.
        """),
        code("""
            def backprop_by_hand(W1, b1, W2, b2, X, Y):
                n = len(Y)
                Z1 = X @ W1 + b1
                H = np.maximum(Z1, 0.0)
                delta2 = (softmax_rows(H @ W2 + b2) - np.eye(W2.shape[1])[Y]) / n  # Z_3 / n
                delta1 = (delta2 @ W2.T) * (Z1 > 0)                               # Z_4 / n
                return X.T @ delta1, delta1.sum(axis=0), H.T @ delta2, delta2.sum(axis=0)

            ours = wb.grad(mlp_loss, argnums=(0, 1, 2, 3))(W1, b1, W2, b2, features, labels)
            mine = backprop_by_hand(W1, b1, W2, b2, features, labels)
            for a, b in zip(ours, mine):
                assert np.allclose(a, b)
            "hand-written backprop agrees with wb.grad"
        """),
        md("""
            ## The matrix chain rule, step by step

            `wb.steps` derives the gradient of one layer one array operation at a time: the
            operation, its shapes, the rule, the adjoint ($\\bar v$, the gradient of the loss
            with respect to that value) and what it sends back to its arguments. Read it from
            the loss backwards, as backprop runs.
        """),
        code("""
            def layer(W, x, t):
                h = np.tanh(W @ x)
                return 0.5 * np.sum((h - t) ** 2)

            W_layer, x_in, t_out = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=3)
            layer_steps = wb.steps(layer, W_layer, x_in, t_out)
            assert [s.rule.split(":")[0] for s in layer_steps.steps][-1] == "matrix product"
            layer_steps
        """),
        md("""
            The last step is the matrix product's rule, $\\bar A = \\bar C B^\\top$: the
            gradient of $W$ is an outer product of the adjoint with the input. In numbers:
        """),
        code("""
            h = np.tanh(W_layer @ x_in)
            expected = np.outer((h - t_out) * (1 - h ** 2), x_in)
            assert np.allclose(wb.grad(layer)(W_layer, x_in, t_out), expected)
            "the chain rule's result, in numpy"
        """),
        md("""
            ## When there is no matrix form

            A Python loop over entries is a program of scalars. Its gradient is still exact,
            but there is no matrix formula to show; workbench says why in one line and shows
            the gradient entry by entry.
        """),
        code("""
            def loop(w):
                return sum(w[i] * w[i + 1] for i in range(len(w) - 1))

            entrywise = wb.derivative(loop, np.ones(4))
            assert entrywise.form_note.startswith("no closed matrix form")
            print(entrywise.form_note)
            entrywise
        """),
        md("""
            ## The program behind the formulas

            The formulas come from the traced program, one node per array operation. The
            graph view shows it with the shapes, and steps through the backward pass.
        """),
        code("""
            wb.graph(cross_entropy, W_test, features, labels)
        """),
        md("""
            ## Exercises
        """),
        exercise(1, """
            Ridge regression adds $\\tfrac\\lambda2\\lVert w\\rVert^2$ to the least-squares loss.
            Predict the gradient as a matrix formula, then confirm it with `wb.derivative` and
            with numbers for $\\lambda = 0.1$.
        """, """
            lam = 0.1

            def ridge(w, X, y):
                return least_squares(w, X, y) + lam / 2 * np.sum(w * w)

            print(wb.derivative(ridge, w, X, y))
            assert np.allclose(wb.grad(ridge)(w, X, y), X.T @ (X @ w - y) + lam * w)
        """),
        exercise(2, """
            Replace the relu of the two-layer network by `np.tanh`. Which line of
            `backprop_by_hand` changes? Change it, and check your version against `wb.grad`.
        """, """
            def tanh_loss(W1, b1, W2, b2, X, Y):
                H = np.tanh(X @ W1 + b1)
                Z = H @ W2 + b2
                Z = Z - Z.max(axis=1, keepdims=True)
                return -np.mean((Z - np.log(np.exp(Z).sum(axis=1, keepdims=True)))[np.arange(len(Y)), Y])

            def tanh_backprop(W1, b1, W2, b2, X, Y):
                n = len(Y)
                H = np.tanh(X @ W1 + b1)
                delta2 = (softmax_rows(H @ W2 + b2) - np.eye(W2.shape[1])[Y]) / n
                delta1 = (delta2 @ W2.T) * (1 - H ** 2)  # tanh' = 1 - tanh², instead of 1[Z1 > 0]
                return X.T @ delta1, delta1.sum(axis=0), H.T @ delta2, delta2.sum(axis=0)

            ours = wb.grad(tanh_loss, argnums=(0, 1, 2, 3))(W1, b1, W2, b2, features, labels)
            for a, b in zip(ours, tanh_backprop(W1, b1, W2, b2, features, labels)):
                assert np.allclose(a, b)
        """),
        exercise(3, """
            Per-sample gradients of the softmax regression: write the loss of **one** example
            (a feature vector and an integer label), map it over the batch with
            `wb.vmap(wb.grad(...), in_dims=(None, 0, 0))`, and check that the mean of the
            per-sample gradients is the batch gradient. What is the formula of one row?
        """, """
            def one_example(W, x, y):
                z = x @ W
                z = z - z.max()
                return -(z - np.log(np.exp(z).sum()))[y]

            per_sample = wb.vmap(wb.grad(one_example), in_dims=(None, 0, 0))(W_test, features, labels)
            assert per_sample.shape == (n, n_features, n_classes)
            assert np.allclose(per_sample.mean(axis=0), wb.grad(cross_entropy)(W_test, features, labels))
            # one row: x (softmax(Wᵀx) - onehot(y))ᵀ, an outer product
            print(wb.derivative(one_example, W_test, features[0], labels[0]))
        """),
    ])
