"""08 torch modules with functional_call: gradients, per-sample gradients, checks and export."""

from __future__ import annotations

from .cells import code, exercise, md, notebook, title

FILENAME = "08_torch_modules.ipynb"


def build():
    return notebook("nb08", [
        title("torch modules, the torch.func way", [
            "differentiate a `torch.nn` model with respect to its parameters as `torch.func` "
            "users write it, `functional_call(model, params, (x,))`, with `wb.grad`;",
            "compute per-sample gradients of a classifier with integer labels with "
            "`wb.vmap(wb.grad(...))`, and check them against `torch.func` live;",
            "verify a model's gradient four ways with `wb.check`, and watch its backward pass "
            "with `wb.backprop`;",
            "read the model's gradient as matrix formulas, and export it as a standalone torch "
            "module.",
        ], intro="""
            This notebook needs PyTorch: start JupyterLab with `make lab LAB_EXTRAS=notebook,torch`
            (or `pip install "workbench[torch]"`), then restart the kernel. The first cell says so
            if torch is missing.
        """),
        code("""
            import importlib.util

            if importlib.util.find_spec("torch") is None:
                raise ModuleNotFoundError(
                    "this notebook needs PyTorch: run  make lab LAB_EXTRAS=notebook,torch  (or pip install "
                    "'workbench[torch]'), then restart the kernel")

            import numpy as np
            import torch
            from torch.func import functional_call

            import workbench as wb

            _ = torch.manual_seed(0)
        """),
        md("""
            ## A classifier and its loss

            A small multilayer perceptron from `torch.nn`, in float64 so that comparisons can
            be tight. `torch.func` differentiates a function of the **parameters**, passed as a
            dict; `functional_call` runs the module with them instead of its own.
        """),
        code("""
            model = torch.nn.Sequential(
                torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).double()
            params = {name: p.detach() for name, p in model.named_parameters()}

            n = 32
            x = torch.randn(n, 4, dtype=torch.float64)
            y = torch.randint(0, 3, (n,))

            def loss(params, x, y):
                logits = functional_call(model, params, (x,))
                return torch.nn.functional.cross_entropy(logits, y)

            grads = wb.grad(loss)(params, x, y)
            assert all(isinstance(g, torch.Tensor) and g.dtype == torch.float64 for g in grads.values())
            {name: tuple(g.shape) for name, g in grads.items()}
        """),
        md("""
            The gradient comes back as a dict of tensors, in the structure of `params`, as
            `torch.func.grad` returns it. The two must agree:
        """),
        code("""
            expected = torch.func.grad(loss)(params, x, y)
            for name in params:
                torch.testing.assert_close(grads[name], expected[name])
            assert set(grads) == set(params)
            "wb.grad agrees with torch.func.grad"
        """),
        md("""
            ## Per-sample gradients

            torch.func's tutorial computes one gradient per example by writing the loss of
            **one** example and mapping it over the batch: the model sees a batch of one
            (`x.unsqueeze(0)`), the parameters are shared (`in_dims=None`), the examples and
            their integer labels are mapped along their first axis.
        """),
        code("""
            def one_example(params, x, y):
                return loss(params, x.unsqueeze(0), y.unsqueeze(0))

            per_sample = wb.vmap(wb.grad(one_example), in_dims=(None, 0, 0))
            ours = per_sample(params, x, y)
            reference = torch.func.vmap(torch.func.grad(one_example), in_dims=(None, 0, 0))(params, x, y)
            for name in params:
                assert ours[name].shape == (n,) + params[name].shape
                torch.testing.assert_close(ours[name], reference[name])
            "per-sample gradients agree with torch.func.vmap(torch.func.grad)"
        """),
        md("""
            The mean of the per-sample gradients is the gradient of the mean loss (the
            gradient is linear), and the examples with the largest gradient norms are the ones
            the model gets most wrong:
        """),
        code("""
            for name in params:
                torch.testing.assert_close(ours[name].mean(dim=0), grads[name])

            norms = torch.sqrt(sum((g.reshape(n, -1) ** 2).sum(dim=1) for g in ours.values()))
            probabilities = torch.softmax(functional_call(model, params, (x,)), dim=1).detach()
            probability_of_label = probabilities[torch.arange(n), y]
            hardest = torch.argsort(norms)[-5:]
            print("largest per-sample gradient norms:", norms[hardest].numpy().round(3))
            print("their label's probability:       ", probability_of_label[hardest].numpy().round(3))
            assert probability_of_label[hardest].mean() < probability_of_label.mean()
        """),
        md("""
            ## Four witnesses: `wb.check`

            `wb.check` computes the gradient four ways and compares them entry by entry: the
            symbolic gradient, workbench's independent numeric tape, central finite
            differences, and `torch.func.grad`. A model's gradient is a good place to use it.
        """),
        code("""
            report = wb.check(loss, params, x, y)
            assert report.passed
            assert all(m.status == "pass" for r in report.inputs for m in r.methods)
            report
        """),
        md("""
            The numeric tape is the witness a course can open up: `wb.backprop` records the
            model's forward pass and steps through the backward pass, one operation at a time.
        """),
        code("""
            small_x, small_y = x[:4], y[:4]
            backward_pass = wb.backprop(loss, params, small_x, small_y)
            assert backward_pass.to_json()["backward"], "the backward pass is recorded step by step"
            backward_pass
        """),
        md("""
            ## The formulas, and the code

            The same network written with numpy arrays shows its backpropagation as matrix
            formulas (notebook 07 explains them). PyTorch's `Linear` computes
            $x W^\\top + b$, so the weights appear transposed.
        """),
        code("""
            def numpy_loss(W1, b1, W2, b2, X, Y):
                H = np.maximum(X @ W1.T + b1, 0.0)
                Z = H @ W2.T + b2
                Z = Z - Z.max(axis=1, keepdims=True)
                return -np.mean((Z - np.log(np.exp(Z).sum(axis=1, keepdims=True)))[np.arange(len(Y)), Y])

            as_numpy = [params[k].numpy() for k in ("0.weight", "0.bias", "2.weight", "2.bias")]
            formulas = wb.derivative(numpy_loss, *as_numpy, x.numpy(), y.numpy(), argnums=(0, 1, 2, 3))
            numpy_grads = wb.grad(numpy_loss, argnums=(0, 1, 2, 3))(*as_numpy, x.numpy(), y.numpy())
            for g, name in zip(numpy_grads, ("0.weight", "0.bias", "2.weight", "2.bias")):
                assert np.allclose(g, grads[name].numpy())
            assert "onehot(Y)" in str(formulas)
            formulas
        """),
        md("""
            `wb.export(..., target="torch")` writes the gradient as a standalone torch module:
            one statement per array operation, importing only torch. It can be copied into a
            program that does not have workbench. Here it is loaded and compared on new data.
        """),
        code("""
            exported = wb.export(loss, params, x, y, target="torch", name="loss")
            namespace = {}
            exec(compile(exported.source, "exported_loss.py", "exec"), namespace)

            fresh_x = torch.randn(n, 4, dtype=torch.float64)
            fresh_y = torch.randint(0, 3, (n,))
            from_module = namespace["grad_loss"](params, fresh_x, fresh_y)
            reference = torch.func.grad(loss)(params, fresh_x, fresh_y)
            for name in params:
                torch.testing.assert_close(from_module[name], reference[name])
            assert "import workbench" not in exported.source
            assert "def grad_loss(params, x, y):" in exported.source
            print(exported.source[:1200])
        """),
        md("""
            ## Exercises
        """),
        exercise(1, """
            Per-example gradient **clipping** (the core of differentially private SGD): scale
            each example's gradient (all parameters together) to norm at most $C = 1$, then
            average. Check that every clipped per-example gradient has norm at most $C$ and
            that the clipped average differs from the plain one.
        """, """
            C = 1.0
            scale = torch.clamp(C / norms, max=1.0)
            clipped = {name: scale.reshape((n,) + (1,) * (g.dim() - 1)) * g for name, g in ours.items()}
            clipped_norms = torch.sqrt(sum((g.reshape(n, -1) ** 2).sum(dim=1) for g in clipped.values()))
            assert torch.all(clipped_norms <= C + 1e-12)
            averaged = {name: g.mean(dim=0) for name, g in clipped.items()}
            assert any(not torch.allclose(averaged[k], grads[k]) for k in params)
            clipped_norms.max()
        """),
        exercise(2, """
            Swap the loss for the mean squared error against one-hot targets
            (`torch.nn.functional.mse_loss(logits, one_hot)`) and check `wb.grad` against
            `torch.func.grad` again, with `wb.check`.
        """, """
            one_hot = torch.nn.functional.one_hot(y, 3).double()

            def mse(params, x, t):
                return torch.nn.functional.mse_loss(functional_call(model, params, (x,)), t)

            mse_report = wb.check(mse, params, x, one_hot)
            assert mse_report.passed
            mse_report
        """),
        exercise(3, """
            A 1-D convolutional network: `Conv1d(1, 4, kernel_size=3)`, `ReLU`, `Flatten`,
            `Linear`. Compute its per-sample gradients on signals of length 10 with integer
            labels, and compare them with `torch.func`.
        """, """
            cnn = torch.nn.Sequential(
                torch.nn.Conv1d(1, 4, kernel_size=3), torch.nn.ReLU(), torch.nn.Flatten(),
                torch.nn.Linear(4 * 8, 3)).double()
            cnn_params = {k: v.detach() for k, v in cnn.named_parameters()}
            signals = torch.randn(8, 1, 10, dtype=torch.float64)
            signal_labels = torch.randint(0, 3, (8,))

            def cnn_loss(p, s, t):
                return torch.nn.functional.cross_entropy(
                    functional_call(cnn, p, (s.unsqueeze(0),)), t.unsqueeze(0))

            ours_cnn = wb.vmap(wb.grad(cnn_loss), in_dims=(None, 0, 0))(cnn_params, signals, signal_labels)
            ref_cnn = torch.func.vmap(torch.func.grad(cnn_loss), in_dims=(None, 0, 0))(
                cnn_params, signals, signal_labels)
            for k in cnn_params:
                torch.testing.assert_close(ours_cnn[k], ref_cnn[k])
                assert ours_cnn[k].shape == (8,) + cnn_params[k].shape
            {k: tuple(v.shape) for k, v in ours_cnn.items()}
        """),
    ])
