"""wb.export(target="torch") of array programs (torch modules through functional_call, dicts of
parameters, class labels), and pytree arguments in the numpy and jax exports.

Expected values come from torch.func.grad run live on the same torch function, at the traced
point and at fresh random inputs (parameters, data and labels) of the same shapes."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import workbench as wb

torch = pytest.importorskip("torch")
F = torch.nn.functional
functional_call = torch.func.functional_call


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mlp_model(dtype):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                               torch.nn.Linear(8, 3)).to(dtype)


def cnn_model(dtype):
    torch.manual_seed(4)
    return torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(40, 3)).to(dtype)


def params_of(model) -> dict:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def classification_loss(model):
    def loss(p, x, y):
        return F.cross_entropy(functional_call(model, p, (x,)), y)

    return loss


def regression_loss(model):
    criterion = torch.nn.MSELoss()

    def loss(p, x, t):
        return criterion(functional_call(model, p, (x,)), t)

    return loss


def fresh_like(params: dict, *data, generator):
    """New random values of the same shapes and dtypes (labels: new classes in 0..2)."""
    def new(t):
        if t.is_floating_point():
            return torch.randn(t.shape, generator=generator, dtype=torch.float64).to(t.dtype)
        return torch.randint(0, 3, t.shape, generator=generator)

    return {k: new(v) for k, v in params.items()}, *(new(d) for d in data)


def assert_gradients_equal(got: dict, expected: dict, dtype) -> None:
    assert isinstance(got, dict) and list(got) == list(expected)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-5)
    for key in expected:
        assert got[key].dtype == dtype and got[key].shape == expected[key].shape, key
        torch.testing.assert_close(got[key], expected[key], **tol)


CASES = {
    "mlp-cross-entropy": (mlp_model, classification_loss, (5, 4), "labels"),
    "cnn-cross-entropy": (cnn_model, classification_loss, (5, 2, 10), "labels"),
    "mlp-mse": (mlp_model, regression_loss, (5, 4), "targets"),
}


def case_args(case: str, dtype):
    make_model, make_loss, x_shape, kind = CASES[case]
    model = make_model(dtype)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(x_shape, generator=g, dtype=torch.float64).to(dtype)
    y = torch.tensor([0, 2, 1, 1, 0]) if kind == "labels" else \
        torch.randn((5, 3), generator=g, dtype=torch.float64).to(dtype)
    return make_loss(model), (params_of(model), x, y)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_torch_module_matches_torch_func_grad_at_the_point_and_elsewhere(tmp_path, case, dtype):
    loss, args = case_args(case, dtype)
    code = wb.export(loss, *args, target="torch", path=tmp_path / "exported.py")
    assert "array-level trace" in code.source and "Fixed at their example values" not in code.source
    grad = load(tmp_path / "exported.py").grad_loss
    generator = torch.Generator().manual_seed(7)
    points = [args] + [fresh_like(*args, generator=generator) for _ in range(2)]
    for point in points:
        assert_gradients_equal(grad(*point), torch.func.grad(loss)(*point), dtype)


def test_a_float32_module_computes_in_float32_from_a_float64_trace(tmp_path):
    """Traced at float64, called with float32: float32 results equal to torch's float32 ones."""
    loss, args = case_args("mlp-cross-entropy", torch.float64)
    grad = load(_exported(tmp_path, loss, args)).grad_loss
    params, x, y = args
    p32 = {k: v.float() for k, v in params.items()}
    assert_gradients_equal(grad(p32, x.float(), y), torch.func.grad(loss)(p32, x.float(), y),
                           torch.float32)


def _exported(tmp_path: Path, loss, args, target: str = "torch", name: str = "exported") -> Path:
    path = tmp_path / f"{name}.py"
    wb.export(loss, *args, target=target, path=path)
    return path


RUNNER = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import importlib
import torch
module = importlib.import_module(sys.argv[3])
data = torch.load(sys.argv[4])
torch.save(module.grad_loss(*data), sys.argv[5])
print(json.dumps(sorted(k for k in sys.modules if k.split(".")[0] in ("workbench", "jax"))))
"""


def test_the_torch_module_runs_without_workbench(tmp_path):
    loss, args = case_args("cnn-cross-entropy", torch.float64)
    path = _exported(tmp_path, loss, args)
    imports = {alias.name for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, (ast.Import, ast.ImportFrom))
               for alias in getattr(node, "names", [])}
    assert imports == {"torch"}
    fresh = fresh_like(*args, generator=torch.Generator().manual_seed(3))
    torch.save(fresh, tmp_path / "args.pt")
    (tmp_path / "runner.py").write_text(RUNNER)
    site_packages = str(Path(torch.__file__).parents[1])
    result = subprocess.run(  # isolated: workbench is not importable there
        [sys.executable, "-I", "-S", str(tmp_path / "runner.py"), site_packages, str(tmp_path),
         "exported", str(tmp_path / "args.pt"), str(tmp_path / "out.pt")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert_gradients_equal(torch.load(tmp_path / "out.pt"), torch.func.grad(loss)(*fresh),
                           torch.float64)


@pytest.mark.parametrize("target", ["numpy", "jax"])
def test_numpy_and_jax_modules_of_the_dict_params_model_match_torch(tmp_path, target):
    if target == "jax":
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
    loss, args = case_args("mlp-cross-entropy", torch.float64)
    grad = load(_exported(tmp_path, loss, args, target, f"m_{target}")).grad_loss
    for point in [args, fresh_like(*args, generator=torch.Generator().manual_seed(5))]:
        params, x, y = point
        got = grad({k: v.numpy() for k, v in params.items()}, x.numpy(), y.numpy())
        expected = torch.func.grad(loss)(*point)
        assert list(got) == list(expected)
        for key in expected:
            np.testing.assert_allclose(np.asarray(got[key]), expected[key].numpy(), rtol=1e-10,
                                       atol=1e-12)


def test_tuple_and_list_arguments_and_several_argnums(tmp_path):
    """A tuple of weights and a list of biases: gradients in the same structures."""
    def net(weights, biases, x):
        h = torch.tanh(x @ weights[0] + biases[0])
        return torch.sum((h @ weights[1] + biases[1]) ** 2)

    g = torch.Generator().manual_seed(2)
    weights = (torch.randn(3, 4, generator=g, dtype=torch.float64),
               torch.randn(4, 2, generator=g, dtype=torch.float64))
    biases = [torch.randn(4, generator=g, dtype=torch.float64),
              torch.randn(2, generator=g, dtype=torch.float64)]
    x = torch.randn(6, 3, generator=g, dtype=torch.float64)
    wb.export(net, weights, biases, x, argnums=(0, 1), target="torch", path=tmp_path / "n.py",
              with_value=True)
    module = load(tmp_path / "n.py")
    torch.testing.assert_close(module.value_net(weights, biases, x), net(weights, biases, x))
    gw, gb = module.grad_net(weights, biases, x)
    ew, eb = torch.func.grad(net, argnums=(0, 1))(weights, biases, x)
    assert isinstance(gw, tuple) and isinstance(gb, list) and len(gw) == len(gb) == 2
    for got, expected in zip([*gw, *gb], [*ew, *eb]):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_wrong_shapes_and_label_dtypes_get_the_modules_clear_errors(tmp_path):
    loss, (params, x, y) = case_args("mlp-cross-entropy", torch.float64)
    grad = load(_exported(tmp_path, loss, (params, x, y))).grad_loss
    with pytest.raises(ValueError, match=r"x must have shape \(5, 4\), got shape \(6, 4\)"):
        grad(params, torch.zeros(6, 4, dtype=torch.float64), y)
    bad = dict(params, **{"0.weight": torch.zeros(8, 5, dtype=torch.float64)})
    with pytest.raises(ValueError, match=r"p\['0.weight'\] must have shape \(8, 4\)"):
        grad(bad, x, y)
    with pytest.raises(ValueError, match="y must hold integers"):
        grad(params, x, y.double())
    with pytest.raises(ValueError, match=r"y must have shape \(5,\)"):
        grad(params, x, y[:4])
    for label in (3, -1):  # torch raises for both; numpy's indexing would wrap -1 silently
        with pytest.raises(ValueError, match="out of bounds for 3 classes"):
            grad(params, x, torch.where(torch.arange(5) == 2, label, y))


def test_guards_raise_outside_the_traced_branch(tmp_path):
    def f(w, x):
        if torch.sum(x @ w) > 0:
            return torch.sum(torch.sin(x @ w))
        return torch.sum(w ** 2)

    w = torch.ones(3, dtype=torch.float64)
    x = torch.ones(4, 3, dtype=torch.float64)
    wb.export(f, w, x, target="torch", path=tmp_path / "g.py")
    grad = load(tmp_path / "g.py").grad_f
    torch.testing.assert_close(grad(w * 0.5, x), torch.func.grad(f)(w * 0.5, x))
    with pytest.raises(ValueError, match="outside the region this code was traced in"):
        grad(-w, x)


def test_integer_data_computed_with_stays_an_input(tmp_path):
    """Integer data the function computes with (weights from a comparison) is an input of the
    module like the class labels: the module is right for other values of both."""
    def loss(w, x, y, groups):
        weights = (groups == 2).to(torch.float64)
        logits = x @ w
        return torch.sum(torch.log_softmax(logits, dim=1)[:, 0] * weights) \
            + F.cross_entropy(logits, y)

    g = torch.Generator().manual_seed(3)
    w = torch.randn(4, 3, generator=g, dtype=torch.float64)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64)
    y, groups = torch.tensor([0, 2, 1, 1, 0]), torch.tensor([2, 0, 2, 1, 1])
    code = wb.export(loss, w, x, y, groups, target="torch", path=tmp_path / "l.py")
    assert "array-level trace" in code.source and "Fixed at their example values" not in code.source
    assert "def grad_loss(w, x, y, groups):" in code.source
    grad = load(tmp_path / "l.py").grad_loss
    for labels, other in ((y, groups), (torch.tensor([2, 2, 0, 1, 0]), torch.tensor([0, 2, 2, 2, 1]))):
        torch.testing.assert_close(grad(w, x, labels, other),
                                   torch.func.grad(loss)(w, x, labels, other))


def test_integer_data_needed_as_python_numbers_is_fixed_and_said_so(tmp_path):
    """A function that turns integer data into Python numbers (a loop bound) cannot take it as
    an input: it is fixed at its example values, and the docstring says so; the class labels,
    used as they are, stay an input."""
    def loss(w, x, y, repeats):
        logits = x @ w
        total = F.cross_entropy(logits, y)
        for _ in range(int(repeats.max())):  # a Python number from the data
            total = total + 0.1 * torch.sum(logits ** 2)
        return total

    g = torch.Generator().manual_seed(4)
    w = torch.randn(4, 3, generator=g, dtype=torch.float64)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64)
    y, repeats = torch.tensor([0, 2, 1, 1, 0]), torch.tensor([1, 2])
    code = wb.export(loss, w, x, y, repeats, target="torch", path=tmp_path / "r.py")
    assert "array-level trace" in code.source
    assert "Fixed at their example values: repeats" in code.source
    assert "def grad_loss(w, x, y):" in code.source
    grad = load(tmp_path / "r.py").grad_loss
    for labels in (y, torch.tensor([2, 2, 0, 1, 0])):
        torch.testing.assert_close(grad(w, x, labels), torch.func.grad(loss)(w, x, labels, repeats))


def test_what_no_level_can_export_is_a_clear_error():
    def loss(p, x):
        return torch.sum(torch.linalg.svdvals(x @ p["w"]))  # neither level traces svdvals

    p = {"w": torch.ones(3, 3, dtype=torch.float64)}
    with pytest.raises(wb.errors.WorkbenchError) as info:
        wb.export(loss, p, torch.eye(3, dtype=torch.float64), target="torch")
    assert "svdvals" in str(info.value)


def test_a_dict_argument_the_array_level_cannot_trace_is_a_clear_error():
    def loss(p, x):
        return np.sum(x * p["a"]) * p["b"] * np.all(x < 10.0)  # np.all: element level only

    with pytest.raises(wb.errors.WorkbenchError, match="argument 0 is a dict.*all"):
        wb.export(loss, {"a": np.array([1.0, 2.0]), "b": 0.5}, np.array([0.3, 0.4]))


def test_benchmark_runs_at_tiny_sizes():
    from benchmarks.bench_export_torch import measure

    rows = measure(tiny=True)  # checks the exported gradient against torch.func.grad first
    assert len(rows) == 1 and rows[0][3].endswith("x")


# ----- the printers of every array op: the numpy export tests' programs, now as torch -----
def elementwise(x, y):
    return np.sum(1.0 / (1.0 + np.exp(-x)) * np.arctan2(x, y)) + np.sum(np.mod(x, 0.7) * y) \
        + np.sum(np.log1p(np.exp(np.minimum(x, 20.0))) * np.sign(y)) + np.sum(np.abs(y) ** x) \
        + np.sum(np.sqrt(x * x + 1.0) * np.tanh(y)) + np.sum(np.maximum(x, y))


def t_elementwise(x, y):
    return torch.sum(torch.sigmoid(x) * torch.atan2(x, y)) + torch.sum(torch.remainder(x, 0.7) * y) \
        + torch.sum(F.softplus(x) * torch.sign(y)) + torch.sum(torch.abs(y) ** x) \
        + torch.sum(torch.sqrt(x * x + 1.0) * torch.tanh(y)) + torch.sum(torch.maximum(x, y))


def ties(x):
    return np.sum(x.max(axis=1) ** 2) + np.sum(np.amin(x, axis=0) * 3.0) + np.max(x)


def t_ties(x):
    return torch.sum(torch.amax(x, dim=1) ** 2) + torch.sum(torch.amin(x, dim=0) * 3.0) \
        + torch.amax(x)


def reversed_slices(x, M):
    return np.sum(x[::-1] * x) + np.sum(M[3:0:-2, ::-1] ** 2) + np.sum(M[..., ::-2][:, 1] ** 3)


def t_reversed_slices(x, M):  # torch has no negative steps: flips and index lists
    return torch.sum(torch.flip(x, (0,)) * x) + torch.sum(torch.flip(M[[3, 1]], (1,)) ** 2) \
        + torch.sum(M[:, 1] ** 3)


def _op_cases() -> dict:
    from tests.test_export_array_numpy import JAX_CASES

    rng = np.random.default_rng(11)
    return {**JAX_CASES,
            "elementwise": (elementwise, t_elementwise,
                            (rng.uniform(0.1, 2.0, size=(3, 4)), rng.normal(size=(3, 4))), (0, 1)),
            "reversed": (reversed_slices, t_reversed_slices,
                         (rng.normal(size=5), rng.normal(size=(5, 4))), (0, 1)),
            "ties": (ties, t_ties, (np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0],
                                              [3.0, 0.5, 3.0]]),), 0)}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", ["contractions", "elementwise", "gather", "joined", "mlp",
                                  "piecewise", "reductions", "reversed", "ties"])
def test_each_array_op_prints_as_torch(tmp_path, case, dtype):
    from tests.test_export_array_numpy import module_args

    f, tf, args, argnums = _op_cases()[case]
    code = wb.export(f, *args, argnums=argnums, target="torch", path=tmp_path / f"t_{case}.py")
    assert "array-level trace" in code.source and "np." not in code.source
    grad = getattr(load(tmp_path / f"t_{case}.py"), f"grad_{f.__name__}")
    tensors = [torch.tensor(np.asarray(a)) for a in args]
    tensors = [t.to(dtype) if t.is_floating_point() else t for t in tensors]
    expected = torch.func.grad(tf, argnums=argnums)(*tensors)
    got = grad(*module_args(code, f, tensors))
    expected, got = ((expected, got) if isinstance(argnums, tuple) else ((expected,), (got,)))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-4, atol=1e-5)
    for g, e in zip(got, expected):
        assert g.dtype == dtype
        torch.testing.assert_close(g, e, **tol)


# ----- random array programs (tests/array_programs.py): the torch module vs the numeric tape -----
def test_random_array_programs_export_to_torch_as_the_tape_differentiates(tmp_path):
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st

    from tests.array_programs import build_function, points, programs

    counter = iter(range(10**6))
    array_level = []  # per example with an array input: the module is the array program

    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.function_scoped_fixture])
    @given(program=programs(), seed=st.integers(0, 2**32 - 1))
    def check(program, seed):
        f = build_function(program)
        argnums = tuple(range(len(program.inputs)))
        pts = points(program, seed, 2)
        for p in pts:
            loss = f(*p)
            assume(np.isfinite(loss) and abs(loss) < 1e6)
        path = tmp_path / f"program_{next(counter)}.py"
        code = wb.export(f, *pts[0], argnums=argnums, target="torch", path=path, name="program")
        if any(np.ndim(a) for a in pts[0]):  # scalar programs keep the element export
            array_level.append("array-level trace" in code.source)
        grad = load(path).grad_program
        for j, p in enumerate(pts):
            try:
                got = grad(*[torch.tensor(np.asarray(a, dtype=np.float64)) for a in p])
            except ValueError as error:  # another branch at the second point: the guard says so
                assert j == 1 and "outside the region" in str(error)
                continue
            want = wb.tape.grad(f, argnums=argnums)(*p)
            scale = max(1.0, *(float(np.max(np.abs(w), initial=0.0)) for w in want))
            for g, w in zip(got, want):
                np.testing.assert_allclose(np.asarray(g, dtype=float), np.asarray(w, dtype=float),
                                           rtol=1e-8, atol=1e-8 * scale)

    check()
    assert array_level and all(array_level)
