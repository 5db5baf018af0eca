"""Gradients in matrix notation (issue 13): the identities of the issue, symbolically and
numerically, the element-form fallback, and the printed forms.

Expected values come from the identities written by hand with SymPy matrix symbols, from the
closed forms in numpy, and from torch.func.grad run live; the matrix expressions are evaluated
with their own evaluator (``workbench.display.matrix.evaluate``), not with the traced code.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import sympy
from sympy import HadamardProduct, MatrixSymbol, OneMatrix

import workbench as wb
from workbench.display.derivative import Derivative
from workbench.display.matrix import NoMatrixForm, OneHot, Softmax, evaluate
from workbench.display.matrix_view import MatrixDerivative
from workbench.sympy_functions import relu as sympy_relu

torch = pytest.importorskip("torch")
from torch.func import grad as torch_grad  # noqa: E402


def _shapes(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _value(d: MatrixDerivative, k: int, values: dict) -> np.ndarray:
    expr = d.forms.exprs[k]
    shape = d.forms.capture.shapes[d.forms.capture.wrt[k]]
    return np.asarray(evaluate(expr, values), dtype=np.float64).reshape(shape)


def _t(a) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64)


def _explicit_zero(difference) -> bool:
    """A matrix expression is the zero matrix, entry by entry (after expansion)."""
    entries = sympy.Matrix(difference.as_explicit()).applyfunc(sympy.expand)
    return entries.is_zero_matrix


# ----- least squares: ∇_w ½‖Xw − y‖² = Xᵀ(Xw − y) ------------------------------------------
def least_squares(w, X, y):
    return 0.5 * np.sum((X @ w - y) ** 2)


@pytest.mark.parametrize("seed", range(3))
def test_least_squares_symbolically_and_numerically(seed):
    rng = _shapes(seed)
    n, m = int(rng.integers(2, 7)), int(rng.integers(1, 5))
    w, X, y = rng.normal(size=m), rng.normal(size=(n, m)), rng.normal(size=n)
    d = wb.derivative(least_squares, w, X, y)
    assert isinstance(d, MatrixDerivative)
    Xs, ws, ys = MatrixSymbol("X", n, m), MatrixSymbol("w", m, 1), MatrixSymbol("y", n, 1)
    expected = Xs.T * (Xs * ws - ys)
    assert d.matrix == expected  # the factored textbook form itself, not an expansion
    assert sympy.expand(d.matrix - (Xs.T * Xs * ws - Xs.T * ys)) == sympy.ZeroMatrix(m, 1)
    values = {"w": w, "X": X, "y": y}
    live = torch_grad(lambda w: 0.5 * ((_t(X) @ w - _t(y)) ** 2).sum())(_t(w)).numpy()
    np.testing.assert_allclose(_value(d, 0, values), live, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_value(d, 0, values), X.T @ (X @ w - y), rtol=1e-10, atol=1e-12)


def test_mean_squared_error_keeps_its_constant():
    rng = _shapes(7)
    w, X, y = rng.normal(size=3), rng.normal(size=(6, 3)), rng.normal(size=6)
    d = wb.derivative(lambda w, X, y: np.mean((X @ w - y) ** 2), w, X, y)
    Xs, ws, ys = MatrixSymbol("X", 6, 3), MatrixSymbol("w", 3, 1), MatrixSymbol("y", 6, 1)
    assert sympy.expand(d.matrix - sympy.Rational(1, 3) * Xs.T * (Xs * ws - ys)) == \
        sympy.ZeroMatrix(3, 1)
    live = torch_grad(lambda w: ((_t(X) @ w - _t(y)) ** 2).mean())(_t(w)).numpy()
    np.testing.assert_allclose(_value(d, 0, {"w": w, "X": X, "y": y}), live, rtol=1e-10)


def test_matrices_from_the_notebook_are_named():
    rng = _shapes(8)
    A_data, b_data = rng.normal(size=(4, 3)), rng.normal(size=4)

    def f(x):
        return 0.5 * np.sum((A_data @ x - b_data) ** 2)

    d = wb.derivative(f, rng.normal(size=3))
    A, x, b = MatrixSymbol("A_data", 4, 3), MatrixSymbol("x", 3, 1), MatrixSymbol("b_data", 4, 1)
    assert d.matrix == A.T * (A * x - b)
    assert any("A_data is the array held in the variable" in n for n in d.notes)


# ----- quadratic form: ∇_x xᵀAx = (A + Aᵀ)x --------------------------------------------------
@pytest.mark.parametrize("seed", range(3))
def test_quadratic_form(seed):
    rng = _shapes(10 + seed)
    n = int(rng.integers(2, 6))
    x, A = rng.normal(size=n), rng.normal(size=(n, n))
    d = wb.derivative(lambda x, A: x @ A @ x, x, A)
    As, xs = MatrixSymbol("A", n, n), MatrixSymbol("x", n, 1)
    assert d.matrix == (As + As.T) * xs  # collected: Ax + Aᵀx = (A + Aᵀ)x
    assert _explicit_zero(d.matrix - (As * xs + As.T * xs))
    live = torch_grad(lambda x: x @ _t(A) @ x)(_t(x)).numpy()
    value = _value(d, 0, {"x": x, "A": A})
    np.testing.assert_allclose(value, live, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(value, (A + A.T) @ x, rtol=1e-10, atol=1e-12)
    assert r"^{\top}" in d.latex() and r"\mathbf{A}" in d.latex()


def test_gradient_with_respect_to_a_matrix():
    rng = _shapes(20)
    x, A = rng.normal(size=3), rng.normal(size=(3, 3))
    d = wb.derivative(lambda x, A: x @ A @ x, x, A, argnums=1)  # ∇_A xᵀAx = x xᵀ
    xs = MatrixSymbol("x", 3, 1)
    assert _explicit_zero(d.matrix - xs * xs.T)
    live = torch_grad(lambda A: _t(x) @ A @ _t(x))(_t(A)).numpy()
    np.testing.assert_allclose(_value(d, 0, {"x": x, "A": A}), live, rtol=1e-10)


# ----- softmax cross-entropy: ∇_z = softmax(z) − onehot(y) -------------------------------------
def _softmax(z):
    p = np.exp(z - z.max())
    return p / p.sum()


def cross_entropy(z, y):
    return np.log(np.sum(np.exp(z))) - z[y]


@pytest.mark.parametrize("seed", range(3))
def test_softmax_cross_entropy_with_an_integer_label(seed):
    rng = _shapes(30 + seed)
    n = int(rng.integers(2, 8))
    z, label = rng.normal(size=n), int(rng.integers(0, n))
    d = wb.derivative(cross_entropy, z, label)
    zs = MatrixSymbol("z", n, 1)
    assert d.matrix == Softmax(zs) - OneHot(label, n, "y")  # the canonical form
    assert "softmax" in repr(d) and "onehot(y)" in repr(d)
    live = torch_grad(lambda z: torch.nn.functional.cross_entropy(
        z[None], torch.tensor([label])))(_t(z)).numpy()
    value = _value(d, 0, {"z": z})
    np.testing.assert_allclose(value, live, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(value, _softmax(z) - np.eye(n)[label], rtol=1e-10, atol=1e-12)


def test_cross_entropy_with_soft_targets_keeps_their_total():
    """−tᵀ log softmax(z) has gradient (𝟏ᵀt) softmax(z) − t: softmax(z) − t only when t sums
    to one, so the form must keep 𝟏ᵀt (checked with targets that do not sum to one)."""
    rng = _shapes(40)
    z, t = rng.normal(size=5), rng.uniform(size=5)

    def f(z, t):
        return -np.sum(t * (z - np.log(np.sum(np.exp(z)))))

    d = wb.derivative(f, z, t)
    live = torch_grad(lambda z: -(_t(t) * torch.log_softmax(z, 0)).sum())(_t(z)).numpy()
    value = _value(d, 0, {"z": z, "t": t})
    np.testing.assert_allclose(value, live, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(value, t.sum() * _softmax(z) - t, rtol=1e-10, atol=1e-12)
    assert d.matrix.has(Softmax(MatrixSymbol("z", 5, 1)))


# ----- an MLP layer's backprop ------------------------------------------------------------------
def mlp_loss(W1, b1, W2, b2, X, Y):
    H = wb.relu(X @ W1 + b1)
    return 0.5 * np.sum((H @ W2 + b2 - Y) ** 2) / X.shape[0]


def _mlp_args(rng, n, d_in, hidden, out):
    return (rng.normal(size=(d_in, hidden)), rng.normal(size=hidden),
            rng.normal(size=(hidden, out)), rng.normal(size=out),
            rng.normal(size=(n, d_in)), rng.normal(size=(n, out)))


@pytest.mark.parametrize("seed", range(2))
def test_mlp_backprop_numerically(seed):
    rng = _shapes(50 + seed)
    sizes = [int(k) for k in rng.integers(2, 6, size=4)]
    args = _mlp_args(rng, *sizes)
    d = wb.derivative(mlp_loss, *args, argnums=(0, 1, 2, 3))
    assert isinstance(d, MatrixDerivative)

    def torch_loss(W1, b1, W2, b2):
        X, Y = _t(args[4]), _t(args[5])
        H = torch.relu(X @ W1 + b1)
        return 0.5 * ((H @ W2 + b2 - Y) ** 2).sum() / X.shape[0]

    live = torch_grad(torch_loss, argnums=(0, 1, 2, 3))(*map(_t, args[:4]))
    values = dict(zip(["W1", "b1", "W2", "b2", "X", "Y"], args))
    for k in range(4):
        np.testing.assert_allclose(_value(d, k, values), live[k].numpy(), rtol=1e-9, atol=1e-12)


def test_mlp_backprop_symbolically():
    """The textbook formulas with Z = XW1 + 𝟏b1ᵀ, H = relu(Z), R = HW2 + 𝟏b2ᵀ − Y,
    Δ = (RW2ᵀ) ⊙ 𝟙[Z > 0]: ∇W1 = XᵀΔ/N, ∇b1 = Δᵀ𝟏/N, ∇W2 = HᵀR/N, ∇b2 = Rᵀ𝟏/N."""
    n, d_in, hidden, out = 2, 2, 2, 1
    args = _mlp_args(_shapes(60), n, d_in, hidden, out)
    d = wb.derivative(mlp_loss, *args, argnums=(0, 1, 2, 3))
    W1, b1 = MatrixSymbol("W1", d_in, hidden), MatrixSymbol("b1", hidden, 1)
    W2, b2 = MatrixSymbol("W2", hidden, out), MatrixSymbol("b2", out, 1)
    X, Y = MatrixSymbol("X", n, d_in), MatrixSymbol("Y", n, out)
    Z = (X * W1 + OneMatrix(n, 1) * b1.T).as_explicit()
    H = Z.applyfunc(sympy_relu)
    R = H * W2.as_explicit() + (OneMatrix(n, 1) * b2.T).as_explicit() - Y.as_explicit()
    mask = Z.applyfunc(lambda u: sympy.Heaviside(u, 0))
    delta = (R * W2.T.as_explicit()).multiply_elementwise(mask)
    ones = sympy.ones(n, 1)
    expected = [X.T.as_explicit() * delta / n, delta.T * ones / n, H.T * R / n, R.T * ones / n]
    for k, want in enumerate(expected):
        mine = sympy.Matrix(d.forms.exprs[k].as_explicit())
        assert (mine - want).applyfunc(sympy.expand).is_zero_matrix, k
    # and it is shown with the layer's intermediate values named once
    assert len(d.forms.definitions) >= 3
    text = repr(d)
    assert "relu(" in text and "1[" in text and "⊙" in text


def test_elementwise_products_and_indicators_print_for_a_course():
    rng = _shapes(70)
    d = wb.derivative(mlp_loss, *_mlp_args(rng, 3, 2, 4, 2), argnums=0)
    latex = d.latex()
    assert r"\mathbf{X}" in latex and r"^{\top}" in latex and r"\odot" in latex
    assert r"\mathbb{1}\left[" in latex
    assert any("torch's convention" in n for n in d.notes)
    assert d._repr_latex_().startswith("$") and d._repr_latex_().endswith("$")


def test_tanh_layer_numerically():
    rng = _shapes(80)
    X, y, w = rng.normal(size=(5, 3)), rng.normal(size=5), rng.normal(size=3)
    d = wb.derivative(lambda w, X, y: np.sum(np.tanh(X @ w) * y), w, X, y)
    live = torch_grad(lambda w: (torch.tanh(_t(X) @ w) * _t(y)).sum())(_t(w)).numpy()
    np.testing.assert_allclose(_value(d, 0, {"w": w, "X": X, "y": y}), live, rtol=1e-10)
    assert d.matrix.has(HadamardProduct) or r"\odot" in d.latex()


def test_scalar_parameter_of_an_array_program():
    rng = _shapes(90)
    lam, w = 0.3, rng.normal(size=4)
    d = wb.derivative(lambda lam, w: lam * (w @ w), lam, w)
    assert isinstance(d, MatrixDerivative)
    assert evaluate(d.matrix, {"lam": lam, "w": w}) == pytest.approx(w @ w)


# ----- the element form: fallback and on request ---------------------------------------------
def test_a_python_loop_over_elements_has_no_matrix_form():
    w = np.array([0.5, -1.0, 2.0])
    d = wb.derivative(lambda w: sum(w[i] ** 2 for i in range(3)), w)
    assert isinstance(d, Derivative)
    w0, w1, w2 = sympy.symbols("w_0 w_1 w_2", real=True)
    assert d.expr == sympy.Array([2 * w0, 2 * w1, 2 * w2])
    assert any(n.startswith("no closed matrix form") for n in d.notes)
    assert r"\text{no closed matrix form" in d.latex()
    with pytest.raises(NoMatrixForm, match="element by element"):
        wb.derivative(lambda w: sum(w[i] ** 2 for i in range(3)), w, form="matrix")


def test_element_form_on_request():
    rng = _shapes(100)
    w, X, y = rng.normal(size=2), rng.normal(size=(3, 2)), rng.normal(size=3)
    d = wb.derivative(least_squares, w, X, y, form="elements")
    assert isinstance(d, Derivative) and not any("matrix" in n for n in d.notes)
    m = wb.derivative(least_squares, w, X, y)
    assert m.elements.expr == d.expr and m.expr == d.expr  # .expr stays the element form
    substitutions = {sympy.Symbol(f"w_{i}", real=True): w[i] for i in range(2)}
    substitutions.update({sympy.Symbol(f"X_{i},{j}", real=True): X[i, j]
                          for i in range(3) for j in range(2)})
    substitutions.update({sympy.Symbol(f"y_{i}", real=True): y[i] for i in range(3)})
    entries = [float(e.xreplace(substitutions)) for e in d.expr]
    np.testing.assert_allclose(entries, X.T @ (X @ w - y), rtol=1e-10)


def test_small_arrays_show_both_forms():
    d = wb.derivative(lambda w: np.sum(w ** 3), np.ones(3))
    assert "w_{0}" in d.latex() and r"\mathbf{w}^{\circ" in d.latex()
    assert repr(d).startswith("∇_w f = 3*w**∘2 = [3*w_0**2")


def test_bad_form_is_a_clear_error():
    with pytest.raises(ValueError, match="form must be one of"):
        wb.derivative(least_squares, np.ones(2), np.ones((3, 2)), np.ones(3), form="matrices")


def test_scalar_functions_are_unchanged():
    d = wb.derivative(lambda x: np.sin(x) * x)
    assert isinstance(d, Derivative) and d.form_note is None


def test_a_deep_composition_falls_back_quickly():
    """x -> sin(x) ⊙ x composed 25 times: the matrix formula would double at each level, so the
    element form (shared subexpressions) is shown, with the reason."""
    def nested(x):
        for _ in range(25):
            x = np.sin(x) * x
        return x.sum()

    start = time.perf_counter()
    d = wb.derivative(nested, np.full(3, 0.5))
    assert time.perf_counter() - start < 60  # generous: without the budget it never returns
    assert isinstance(d, Derivative) and "would have" in d.form_note


# ----- bounded on a real network -------------------------------------------------------------
def test_mnist_sized_mlp_is_quick_and_never_expands_elements():
    rng = _shapes(110)
    args = _mlp_args(rng, 32, 784, 128, 10)
    start = time.perf_counter()
    d = wb.derivative(mlp_loss, *args, argnums=(0, 1, 2, 3))
    text = repr(d)
    assert time.perf_counter() - start < 60  # generous: the element path would take hours
    assert isinstance(d, MatrixDerivative) and d._elements is None
    assert "∇_W1 mlp_loss" in text and "784×128" in text


def test_broadcasting_becomes_products_with_ones():
    rng = _shapes(120)
    w, X = rng.normal(size=3), rng.normal(size=(5, 3))
    d = wb.derivative(lambda w, X: np.sum((X + w) ** 2), w, X)  # row broadcast: X + 𝟏wᵀ
    live = torch_grad(lambda w: ((_t(X) + w) ** 2).sum())(_t(w)).numpy()
    np.testing.assert_allclose(_value(d, 0, {"w": w, "X": X}), live, rtol=1e-10)
    d = wb.derivative(lambda w: np.sum(np.broadcast_to(w, (4, 3)) * 2.0), w)
    assert d.matrix == 8 * OneMatrix(3, 1)  # 𝟏ᵀ𝟏 = 4 rows, times 2
    d = wb.derivative(lambda w, X: np.sum(X.sum(axis=1) * (X @ w)), w, X)  # X 𝟏 and X w
    live = torch_grad(lambda w: (_t(X).sum(1) * (_t(X) @ w)).sum())(_t(w)).numpy()
    np.testing.assert_allclose(_value(d, 0, {"w": w, "X": X}), live, rtol=1e-10)


def test_numerically_stable_softmax_gives_the_same_formula():
    """With z − max(z) (how softmax is written in practice) the gradient through the max
    cancels (softmax sums to one): the form is still softmax(z) − onehot(y)."""
    rng = _shapes(130)
    z, label = rng.normal(size=6), 4

    def stable(z, y):
        m = z.max()
        return np.log(np.sum(np.exp(z - m))) + m - z[y]

    d = wb.derivative(stable, z, label)
    assert d.matrix == Softmax(MatrixSymbol("z", 6, 1)) - OneHot(label, 6, "y")
    assert repr(d).startswith("∇_z stable = softmax(z) - onehot(y)")
    live = torch_grad(lambda z: torch.nn.functional.cross_entropy(
        z[None], torch.tensor([label])))(_t(z)).numpy()
    np.testing.assert_allclose(_value(d, 0, {"z": z}), live, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("stable", [False, True])
def test_batched_softmax_regression(stable):
    """∇_W mean cross-entropy of softmax(XW) against one-hot rows Y = Xᵀ(softmax(XW) − Y)/N."""
    rng = _shapes(140)
    n, d_in, k = 6, 3, 4
    W, X = rng.normal(size=(d_in, k)), rng.normal(size=(n, d_in))
    labels = rng.integers(0, k, size=n)
    Y = np.eye(k)[labels]

    def loss(W, X, Y):
        Z = X @ W
        if stable:  # log-sum-exp with each row's max taken out and added back
            m = Z.max(axis=1, keepdims=True)
            lse = np.log(np.sum(np.exp(Z - m), axis=1)) + m[:, 0]
        else:
            lse = np.log(np.sum(np.exp(Z), axis=1))
        return np.mean(lse - np.sum(Z * Y, axis=1))

    d = wb.derivative(loss, W, X, Y)
    Ws, Xs, Ys = MatrixSymbol("W", d_in, k), MatrixSymbol("X", n, d_in), MatrixSymbol("Y", n, k)
    assert sympy.expand(d.matrix - sympy.Rational(1, n) * Xs.T * (Softmax(Xs * Ws) - Ys)) == \
        sympy.ZeroMatrix(d_in, k)
    assert repr(d).startswith(f"∇_W loss = 1/{n}*X.T*(softmax(X*W) - Y)")
    assert any("row by row" in note for note in d.notes)
    live = torch_grad(lambda W: torch.nn.functional.cross_entropy(
        _t(X) @ W, torch.tensor(labels)))(_t(W)).numpy()
    np.testing.assert_allclose(_value(d, 0, {"W": W, "X": X, "Y": Y}), live, rtol=1e-10,
                               atol=1e-12)


def test_shifted_log_softmax_with_an_integer_label():
    """z − max(z) inside log-softmax, then the label's entry (how the cross-entropy is written
    in practice): the max's subgradient meets 1 − 𝟏ᵀsoftmax(z) = 0 and drops out."""
    rng = _shapes(135)
    z, label = rng.normal(size=5), 3

    def shifted(z, y):
        z = z - z.max()
        return -(z - np.log(np.exp(z).sum()))[y]

    d = wb.derivative(shifted, z, label)
    assert d.matrix == Softmax(MatrixSymbol("z", 5, 1)) - OneHot(label, 5, "y")
    live = torch_grad(lambda z: torch.nn.functional.cross_entropy(
        z[None], torch.tensor([label])))(_t(z)).numpy()
    np.testing.assert_allclose(_value(d, 0, {"z": z}), live, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("stable", [False, True])
def test_batched_cross_entropy_with_integer_labels_shows_onehot(stable):
    """The labels as class indices, gathered by Z[arange(N), Y]: ∇_W = Xᵀ(softmax(XW) − onehot(Y))/N."""
    rng = _shapes(145)
    n, d_in, k = 7, 3, 4
    W, X = rng.normal(size=(d_in, k)), rng.normal(size=(n, d_in))
    labels = rng.integers(0, k, size=n)

    def loss(W, X, Y):
        Z = X @ W
        if stable:
            Z = Z - Z.max(axis=1, keepdims=True)
        log_p = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
        return -np.mean(log_p[np.arange(len(Y)), Y])

    d = wb.derivative(loss, W, X, labels)
    assert repr(d).startswith(f"∇_W loss = 1/{n}*X.T*(softmax(X*W) - onehot(Y))")
    assert r"\operatorname{onehot}\left(Y\right)" in d.latex()
    live = torch_grad(lambda W: torch.nn.functional.cross_entropy(
        _t(X) @ W, torch.tensor(labels)))(_t(W)).numpy()
    np.testing.assert_allclose(_value(d, 0, {"W": W, "X": X, "Y": labels}), live, rtol=1e-10,
                               atol=1e-12)


def test_a_constant_that_only_looks_one_hot_stays_a_constant():
    # Each row has one nonzero, but not at the labels' columns: not onehot(Y).
    rng = _shapes(146)
    W, X, labels = rng.normal(size=(2, 3)), rng.normal(size=(4, 2)), np.array([0, 1, 2, 0])
    C = np.eye(3)[(labels + 1) % 3]
    d = wb.derivative(lambda W, X, Y: np.sum((X @ W) * C) + 0.0 * Y.sum(), W, X, labels)
    assert "onehot" not in repr(d)
    np.testing.assert_allclose(_value(d, 0, {"W": W, "X": X, "C": C, "C1": C, "Y": labels}),
                               X.T @ C, rtol=1e-12)


def test_linear_and_quadratic_terms_collect_separately():
    rng = _shapes(150)
    x, A, b = rng.normal(size=4), rng.normal(size=(4, 4)), rng.normal(size=4)
    d = wb.derivative(lambda x, A, b: 0.5 * x @ A @ x - b @ x, x, A, b)
    As, xs, bs = MatrixSymbol("A", 4, 4), MatrixSymbol("x", 4, 1), MatrixSymbol("b", 4, 1)
    assert sympy.expand(d.matrix - (sympy.Rational(1, 2) * (As + As.T) * xs - bs)) == \
        sympy.ZeroMatrix(4, 1)
    assert repr(d).startswith("∇_x f = 1/2*(A + A.T)*x - b")  # collected, b apart
    np.testing.assert_allclose(_value(d, 0, {"x": x, "A": A, "b": b}), 0.5 * (A + A.T) @ x - b,
                               rtol=1e-10)


def test_logistic_regression_cancels_to_sigmoid_minus_labels():
    """∇_w of the binary cross-entropy of sigmoid(Xw) is Xᵀ(σ(Xw) − y): the entrywise fractions
    of the raw gradient cancel."""
    from workbench.sympy_functions import sigmoid

    rng = _shapes(160)
    n, m = 3, 2
    w, X = rng.normal(size=m), rng.normal(size=(n, m))
    y = (rng.normal(size=n) > 0).astype(float)

    def bce(w, X, y):
        p = wb.sigmoid(X @ w)
        return -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))

    d = wb.derivative(bce, w, X, y)
    assert repr(d).startswith("∇_w bce = X.T*(sigmoid(X*w) - y)")
    Xs, ws, ys = MatrixSymbol("X", n, m), MatrixSymbol("w", m, 1), MatrixSymbol("y", n, 1)
    expected = Xs.T.as_explicit() * (
        (Xs * ws).as_explicit().applyfunc(sigmoid) - ys.as_explicit())
    assert (sympy.Matrix(d.matrix.as_explicit()) - expected).applyfunc(sympy.expand).is_zero_matrix
    live = torch_grad(lambda w: torch.nn.functional.binary_cross_entropy(
        torch.sigmoid(_t(X) @ w), _t(y), reduction="sum"))(_t(w)).numpy()
    np.testing.assert_allclose(_value(d, 0, {"w": w, "X": X, "y": y}), live, rtol=1e-9)


# ----- wb.steps: the matrix chain rule ---------------------------------------------------------
def _compose(steps) -> object:
    """The gradient from the steps alone: each name replaced by its definition and each adjoint
    by what the later steps sent it, until only the parameters are left."""
    table = {}
    for s in steps.steps:
        table[s.name] = s.definition
        table[s.adjoint] = s.adjoint_value
    expr = steps.gathered
    for _ in range(len(table) + 1):
        new = expr.xreplace(table)
        if new == expr:
            break
        expr = new
    return expr


def layer_loss(W, b, x, y):
    h = wb.relu(W @ x + b)
    return 0.5 * np.sum((h - y) ** 2)


def test_steps_of_a_layer_follow_the_matrix_chain_rule():
    rng = _shapes(170)
    W, b, x, y = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=4), rng.normal(size=3)
    s = wb.steps(layer_loss, W, b, x, y)  # an array argument: the matrix chain rule by default
    rules = [step.rule for step in s.steps]
    assert rules[-1].startswith("matrix product") and any("relu'" in r for r in rules)
    product = s.steps[-1]
    assert product.arg_shapes == [(3, 4), (4,)] and product.shape == (3,)
    assert "ℝ^3×4, ℝ^4 → ℝ^3" in s.text() and "1[v_" in s.text()
    assert any("torch's convention" in n for n in s.notes)
    assert r"\bar{v}" in s.latex() and r"\odot" in s.latex()
    values = {"W": W, "b": b, "x": x, "y": y}
    live = torch_grad(lambda W: 0.5 * ((torch.relu(W @ _t(x) + _t(b)) - _t(y)) ** 2).sum())(
        _t(W)).numpy()
    np.testing.assert_allclose(np.asarray(evaluate(_compose(s), values)), live, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(evaluate(s.result, values)), live, rtol=1e-10)
    assert [p["rule"] for p in s.pages()][-1] == "simplification"


def test_steps_of_least_squares_compose_to_the_gradient():
    rng = _shapes(180)
    w, X, y = rng.normal(size=3), rng.normal(size=(5, 3)), rng.normal(size=5)
    s = wb.steps(least_squares, w, X, y, form="matrix")
    assert s.result == MatrixSymbol("X", 5, 3).T * (
        MatrixSymbol("X", 5, 3) * MatrixSymbol("w", 3, 1) - MatrixSymbol("y", 5, 1))
    composed = np.asarray(evaluate(_compose(s), {"w": w, "X": X, "y": y})).ravel()
    np.testing.assert_allclose(composed, X.T @ (X @ w - y), rtol=1e-10)


def test_scalar_steps_of_an_array_point_to_the_matrix_form():
    with pytest.raises(wb.InputTypeError, match="form='matrix'"):
        wb.steps(least_squares, np.ones(2), np.ones((3, 2)), np.ones(3), form="elements")


@pytest.mark.parametrize("form", ["auto", "matrix"])
def test_steps_of_an_element_loop_say_why_not(form):
    with pytest.raises(NoMatrixForm, match="steps: no matrix form"):
        wb.steps(lambda w: sum(w[i] ** 2 for i in range(3)), np.ones(3), form=form)


def test_fallback_notes_are_escaped_in_latex():
    d = wb.derivative(lambda w: np.concatenate([w, w]).sum() + w[0] * w[1] * w[2] * w[0], np.ones(3))
    assert isinstance(d, Derivative) and d.form_note.startswith("no closed matrix form")
    d.form_note = "the operation 'index_add' 50% {x}"
    assert r"index\_add' 50\% \{x\}" in d.latex()
