"""Write notebooks/01_reference_examples.ipynb: the torch.func.grad reference examples with workbench."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell("# The torch.func.grad reference examples, with workbench\n\n"
                      "Each example of the `torch.func.grad` documentation, in numpy form, run with "
                      "`workbench`'s transforms (same semantics)."),
    new_code_cell("import numpy as np\nimport workbench as wb\nfrom workbench import grad"),
    new_markdown_cell("## Gradient of sin is cos"),
    new_code_cell("x = np.random.randn()\ncos_x = grad(lambda x: np.sin(x))(x)\n"
                  "assert np.allclose(cos_x, np.cos(x))\ncos_x, np.cos(x)"),
    new_markdown_cell("## Second-order gradients"),
    new_code_cell("neg_sin_x = grad(grad(lambda x: np.sin(x)))(x)\n"
                  "assert np.allclose(neg_sin_x, -np.sin(x))\nneg_sin_x"),
    new_markdown_cell("## Per-sample gradients: `vmap(grad(...))`\n\n"
                      "One compiled gradient, evaluated as one vectorised numpy call over the batch."),
    new_code_cell(
        "batch_size, feature_size = 3, 5\n\n"
        "def model(weights, feature_vec):\n"
        "    # Very simple linear model with activation\n"
        "    assert feature_vec.ndim == 1\n"
        "    return wb.relu(feature_vec.dot(weights))\n\n"
        "def compute_loss(weights, example, target):\n"
        "    y = model(weights, example)\n"
        "    return ((y - target) ** 2).mean()  # MSELoss\n\n"
        "weights = np.random.randn(feature_size)\n"
        "examples = np.random.randn(batch_size, feature_size)\n"
        "targets = np.random.randn(batch_size)\n"
        "grad_weight_per_example = wb.vmap(grad(compute_loss), in_dims=(None, 0, 0))(\n"
        "    weights, examples, targets)\n"
        "z = examples @ weights\n"
        "assert np.allclose(grad_weight_per_example,\n"
        "                   (2 * (np.maximum(z, 0) - targets) * (z > 0))[:, None] * examples)\n"
        "grad_weight_per_example"),
    new_markdown_cell("## has_aux and argnums"),
    new_code_cell(
        "def my_loss_func(y, y_pred):\n"
        "    loss_per_sample = (0.5 * y_pred - y) ** 2\n"
        "    loss = loss_per_sample.mean()\n"
        "    return loss, (y_pred, loss_per_sample)\n\n"
        "fn = grad(my_loss_func, argnums=(0, 1), has_aux=True)\n"
        "y_true = np.random.rand(4)\ny_preds = np.random.rand(4)\n"
        "(g_true, g_pred), (y_pred, loss_per_sample) = fn(y_true, y_preds)\n"
        "assert np.allclose(g_true, -2 * (0.5 * y_preds - y_true) / 4)\n"
        "g_true, g_pred"),
    new_markdown_cell("## no_grad inside the function"),
    new_code_cell("def f(x):\n    with wb.no_grad():\n        c = x ** 2\n    return x - c\n\n"
                  "assert grad(f)(3.0) == 1.0\ngrad(f)(3.0)"),
]
nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                        "language": "python"}})
nbformat.write(nb, "notebooks/01_reference_examples.ipynb")
