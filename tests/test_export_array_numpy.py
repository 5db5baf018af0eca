"""wb.export(target="numpy") of array functions: the array-level program, one numpy statement per
array op. Every exported module runs in a fresh ``python -I -S`` process (numpy only, no
workbench), and its gradients are compared with torch.func.grad of the same function written in
torch, run live in float64."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from workbench.export import array_numpy

RUNNER = textwrap.dedent("""
    import importlib, json, sys
    sys.path.append(sys.argv[1])     # site-packages: numpy, but not the .pth of workbench
    sys.path.insert(0, sys.argv[2])  # the directory of the exported module
    import numpy as np
    module = importlib.import_module(sys.argv[3])
    data = np.load(sys.argv[4])
    args = [data[f"a{k}"] for k in range(len(data.files))]
    result = getattr(module, sys.argv[5])(*args)
    result = result if isinstance(result, tuple) else (result,)
    np.savez(sys.argv[6], *[np.asarray(r) for r in result])
    print(json.dumps({"loaded": sorted(k for k in sys.modules if k.split(".")[0] in
                                       ("workbench", "torch", "jax", "sympy", "scipy"))}))
""")
SITE_PACKAGES = str(Path(np.__file__).parents[1])


def run_isolated(tmp_path: Path, module: str, function: str, args) -> tuple:
    """``module.function(*args)`` in a fresh isolated interpreter that cannot import workbench."""
    (tmp_path / "runner.py").write_text(RUNNER)
    np.savez(tmp_path / "args.npz", **{f"a{k}": np.asarray(a) for k, a in enumerate(args)})
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(tmp_path / "runner.py"), SITE_PACKAGES, str(tmp_path),
         module, str(tmp_path / "args.npz"), function, str(tmp_path / "out.npz")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["loaded"] == []
    with np.load(tmp_path / "out.npz") as out:
        return tuple(out[f"arr_{k}"] for k in range(len(out.files)))


def module_args(code, f, args) -> list:
    """The arguments the exported grad_<f> takes: the float ones and the integer data it reads
    (class labels), not those fixed at their example values (it names them in its signature)."""
    taken = re.search(rf"def grad_{f.__name__}\((.*?)\):", code.source).group(1).split(", ")
    names = list(inspect.signature(f).parameters)
    return [a for name, a in zip(names, args) if name in taken]


def export_and_compare(tmp_path, torch, f, tf, args, argnums, points, name="m"):
    """Export ``f`` at ``args``; at each point (float arguments only) the isolated module's
    gradient must equal torch.func.grad of ``tf`` (which takes every argument as a tensor)."""
    code = wb.export(f, *args, argnums=argnums, path=tmp_path / f"{name}.py")
    assert "array-level trace" in code.source  # the array program, not the element one
    positions = argnums if isinstance(argnums, tuple) else (argnums,)
    floats = [k for k, a in enumerate(args) if np.asarray(a).dtype.kind == "f"]
    for point in points:
        full = list(args)
        for k, value in zip(floats, point):
            full[k] = value
        got = run_isolated(tmp_path, name, f"grad_{f.__name__}", module_args(code, f, full))
        tensors = [torch.tensor(np.asarray(a)) for a in full]
        expected = torch.func.grad(tf, argnums=tuple(positions))(*tensors)
        assert len(got) == len(expected)
        for g, e, k in zip(got, expected, positions):
            assert g.shape == np.shape(args[k]) and g.dtype == np.float64
            np.testing.assert_allclose(g, e.numpy(), rtol=1e-10, atol=1e-12)
    return code


def function_lines(source: str, name: str) -> int:
    node = next(n for n in ast.walk(ast.parse(source))
                if isinstance(n, ast.FunctionDef) and n.name == name)
    return node.end_lineno - node.lineno + 1


RNG = np.random.default_rng(12)


# ----- an MLP with softmax cross-entropy (gathering the labels' log-probabilities) -----
def mlp(W1, b1, W2, b2, x, labels):
    h = np.maximum(x @ W1 + b1, 0.0)
    z = np.tanh(h) @ W2 + b2
    m = z.max(axis=1, keepdims=True)
    log_p = z - (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))
    return -log_p[np.arange(x.shape[0]), labels].mean()


def t_mlp(W1, b1, W2, b2, x, labels):
    import torch

    z = torch.tanh(torch.relu(x @ W1 + b1)) @ W2 + b2
    return torch.nn.functional.cross_entropy(z, labels)


def mlp_args(batch, n_in=10, hidden=32, classes=5):
    return (RNG.normal(size=(n_in, hidden)) / 3, RNG.normal(size=hidden) / 3,
            RNG.normal(size=(hidden, classes)) / 3, RNG.normal(size=classes) / 3,
            RNG.normal(size=(batch, n_in)), RNG.integers(0, classes, size=batch))


def test_mlp_softmax_cross_entropy_matches_torch_and_is_short(tmp_path, torch):
    args = mlp_args(64)
    points = [args[:5], [a * 1.5 - 0.1 for a in args[:5]]]
    code = export_and_compare(tmp_path, torch, mlp, t_mlp, args, (0, 1, 2, 3), points)
    # O(array ops): the element export prints one line per scalar operation (hundreds of
    # thousands here); the array program is a few dozen statements.
    assert function_lines(code.source, "grad_mlp") < 60
    assert len(code.source.splitlines()) < 200


def test_the_element_export_would_break_the_line_bound(tmp_path, monkeypatch):
    args = mlp_args(8, n_in=4, hidden=8, classes=3)
    array_code = wb.export(mlp, *args, argnums=(0, 1, 2, 3))
    monkeypatch.setattr(wb.config, "array_level", False)
    element_code = wb.export(mlp, *args, argnums=(0, 1, 2, 3))
    assert "array-level trace" not in element_code.source
    assert function_lines(array_code.source, "grad_mlp") < 60 < \
        function_lines(element_code.source, "grad_mlp")


# ----- linear regression -----
def linreg(w, X, y):
    return ((X @ w - y) ** 2).mean()


def t_linreg(w, X, y):
    return ((X @ w - y) ** 2).mean()


def test_linear_regression_matches_torch(tmp_path, torch):
    args = (RNG.normal(size=4), RNG.normal(size=(50, 4)), RNG.normal(size=50))
    points = [args, (RNG.normal(size=4), RNG.normal(size=(50, 4)), RNG.normal(size=50))]
    export_and_compare(tmp_path, torch, linreg, t_linreg, args, (0, 1, 2), points)


# ----- broadcasting, with a scalar parameter -----
def broadcasting(a, b, c):
    return np.sum(np.sin(a * b) * c + a / (1.0 + b ** 2)) + np.sum(np.exp(-a) - b) * c


def t_broadcasting(a, b, c):
    import torch

    return torch.sum(torch.sin(a * b) * c + a / (1.0 + b ** 2)) + torch.sum(torch.exp(-a) - b) * c


def test_broadcasting_matches_torch(tmp_path, torch):
    args = (RNG.normal(size=(3, 1)), RNG.normal(size=4), 0.7)
    points = [args, (RNG.normal(size=(3, 1)), RNG.normal(size=4), -1.3)]
    code = export_and_compare(tmp_path, torch, broadcasting, t_broadcasting, args, (0, 1, 2),
                              points)
    assert 'c = _input(c, "c", ())' in code.source


# ----- reductions over axes (ties of max split evenly, as torch.amax) -----
def reductions(x):
    lse = np.log(np.exp(x).sum(axis=0))
    return np.sum(x.sum(axis=0) ** 2) + np.sum(x.mean(axis=1, keepdims=True) * x) \
        + x.max(axis=1).sum() + np.min(x, axis=0).sum() + np.sum(lse * np.amax(x, axis=(0, 1)))


def t_reductions(x):
    import torch

    lse = torch.logsumexp(x, dim=0)
    return torch.sum(x.sum(dim=0) ** 2) + torch.sum(x.mean(dim=1, keepdim=True) * x) \
        + x.amax(dim=1).sum() + x.amin(dim=0).sum() + torch.sum(lse * torch.amax(x, dim=(0, 1)))


def test_reductions_over_axes_match_torch(tmp_path, torch):
    ties = np.array([[1.0, 2.0, 2.0, 0.5], [3.0, 3.0, -1.0, 0.0], [0.25, -2.0, 3.0, -2.0]])
    export_and_compare(tmp_path, torch, reductions, t_reductions, (ties,), 0,
                       [(ties,), (RNG.normal(size=(3, 4)),)])


# ----- indexing: gathers with repeated indices, slices, an integer index argument -----
def gather(x, M, idx):
    return np.sum(x[idx] ** 2) + np.sum(M[1:, ::2] * M[:-1, ::2]) \
        + np.sum(np.sin(M[[0, 0, 3], [1, 1, 4]])) + x[3] * M[2, 2] + np.sum(M[:, idx[:2]] ** 3)


def t_gather(x, M, idx):
    import torch

    return torch.sum(x[idx] ** 2) + torch.sum(M[1:, ::2] * M[:-1, ::2]) \
        + torch.sum(torch.sin(M[[0, 0, 3], [1, 1, 4]])) + x[3] * M[2, 2] \
        + torch.sum(M[:, idx[:2]] ** 3)


def test_gathers_with_repeated_indices_match_torch(tmp_path, torch):
    args = (RNG.normal(size=6), RNG.normal(size=(4, 5)), np.array([0, 2, 2, 5, 0, 2]))
    points = [args[:2], (RNG.normal(size=6), RNG.normal(size=(4, 5)))]
    code = export_and_compare(tmp_path, torch, gather, t_gather, args, (0, 1), points)
    assert "def _scatter_add(" in code.source  # the adjoint of a gather, copied in
    assert "def grad_gather(x, M, idx):" in code.source  # the integer indices are an input


# ----- concatenate and stack -----
def joined(a, b):
    parts = np.concatenate([a, b.ravel() ** 2, np.sin(a)], axis=0)
    return np.sum(parts * np.arange(1.0, 11.0)) + np.sum(np.stack([a, np.cos(a)], axis=1) ** 2) \
        + np.sum(np.concatenate([b, b * a[:2, None]], axis=1) ** 3)


def t_joined(a, b):
    import torch

    parts = torch.cat([a, b.reshape(-1) ** 2, torch.sin(a)], dim=0)
    return torch.sum(parts * torch.arange(1.0, 11.0)) \
        + torch.sum(torch.stack([a, torch.cos(a)], dim=1) ** 2) \
        + torch.sum(torch.cat([b, b * a[:2, None]], dim=1) ** 3)


def test_concatenate_and_stack_match_torch(tmp_path, torch):
    args = (RNG.normal(size=3), RNG.normal(size=(2, 2)))
    export_and_compare(tmp_path, torch, joined, t_joined, args, (0, 1),
                       [args, (RNG.normal(size=3), RNG.normal(size=(2, 2)))])


# ----- where and clip, at clip's bounds and where's switch -----
def piecewise(x):
    return np.sum(np.where(x > 0, x ** 2, np.sin(x))) + np.sum(np.clip(x, -0.5, 0.5) * x) \
        + np.sum(np.abs(x) + np.maximum(x, 0.0))


def t_piecewise(x):
    import torch

    return torch.sum(torch.where(x > 0, x ** 2, torch.sin(x))) \
        + torch.sum(torch.clamp(x, -0.5, 0.5) * x) \
        + torch.sum(torch.abs(x) + torch.maximum(x, torch.tensor(0.0)))  # a tie splits 1/2-1/2


def test_where_and_clip_match_torch_at_their_kinks(tmp_path, torch):
    x = np.array([-1.0, -0.5, -0.2, 0.0, 0.3, 0.5, 0.9, 2.0])
    export_and_compare(tmp_path, torch, piecewise, t_piecewise, (x,), 0,
                       [(x,), (RNG.normal(size=8),)])


# ----- matmul and einsum -----
def contractions(A, B, C):
    return np.sum(np.einsum("ij,jk->ik", A, B) ** 2) + np.sum(A @ B @ B.T) \
        + np.sum(np.einsum("bij,jk->bik", C, B) ** 2) + np.sum(np.einsum("bij,bij->b", C, C)) \
        + np.sum(np.tanh(C @ A.T))


def t_contractions(A, B, C):
    import torch

    return torch.sum(torch.einsum("ij,jk->ik", A, B) ** 2) + torch.sum(A @ B @ B.T) \
        + torch.sum(torch.einsum("bij,jk->bik", C, B) ** 2) \
        + torch.sum(torch.einsum("bij,bij->b", C, C)) + torch.sum(torch.tanh(C @ A.T))


def test_matmul_and_einsum_match_torch(tmp_path, torch):
    args = (RNG.normal(size=(3, 4)), RNG.normal(size=(4, 5)), RNG.normal(size=(2, 3, 4)))
    export_and_compare(tmp_path, torch, contractions, t_contractions, args, (0, 1, 2),
                       [args, tuple(RNG.normal(size=np.shape(a)) for a in args)])


# ----- transforms inside the exported function -----
def nested(w, X):
    inner = wb.grad(lambda v: np.sum(np.sin(v) * v))(w)
    return np.sum(inner ** 2) + np.sum(wb.vmap(lambda row: np.tanh(row @ w))(X) ** 2)


def t_nested(w, X):
    import torch

    inner = torch.func.grad(lambda v: torch.sum(torch.sin(v) * v))(w)
    return torch.sum(inner ** 2) + torch.sum(torch.vmap(lambda row: torch.tanh(row @ w))(X) ** 2)


def test_grad_and_vmap_inside_match_torch(tmp_path, torch):
    args = (RNG.normal(size=3), RNG.normal(size=(5, 3)))
    export_and_compare(tmp_path, torch, nested, t_nested, args, (0, 1),
                       [args, (RNG.normal(size=3), RNG.normal(size=(5, 3)))])


# ----- the contract of the numpy export -----
def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_value_function_names_shape_checks_and_imports(tmp_path, torch):
    args = (RNG.normal(size=4), RNG.normal(size=(50, 4)), RNG.normal(size=50))
    code = wb.export(linreg, *args, path=tmp_path / "v.py", with_value=True, name="fit")
    assert code.functions == ["grad_fit", "value_fit"]
    tree = ast.parse(code.source)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported == {"numpy"} and not any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))
    assert "Gradient of fit with respect to w" in ast.get_docstring(tree)
    module = load(tmp_path / "v.py")
    value = module.value_fit(*args)
    assert type(value) is np.float64
    assert value == pytest.approx(float(t_linreg(*map(torch.tensor, args))), rel=1e-13)
    with pytest.raises(ValueError, match=r"X must have shape \(50, 4\), got shape \(4, 50\)"):
        module.grad_fit(args[0], args[1].T, args[2])


def test_results_never_share_memory_with_inputs(tmp_path):
    def f(x, y):
        return np.sum(x * y) + np.sum(y.T @ y)

    x, y = RNG.normal(size=(3, 3)), RNG.normal(size=(3, 3))
    wb.export(f, x, y, argnums=(0, 1), path=tmp_path / "s.py")
    gx, gy = load(tmp_path / "s.py").grad_f(x, y)
    assert not np.shares_memory(gx, y) and not np.shares_memory(gx, gy)
    np.testing.assert_array_equal(gx, y)


def test_control_flow_becomes_a_check_outside_the_traced_branch(tmp_path, torch):
    def f(x, w):
        if x.sum() > 0:
            return np.sum(np.tanh(x * w))
        return np.sum(x ** 2 * w)

    x, w = np.array([0.3, -0.2, 0.8]), RNG.normal(size=3)
    code = wb.export(f, x, w, argnums=(0, 1), path=tmp_path / "g.py", with_value=True)
    assert "array-level trace" in code.source and "Valid where" in code.source
    module = load(tmp_path / "g.py")
    tx = torch.tensor([0.5, 0.1, -0.2])
    expected = torch.func.grad(lambda x, w: torch.sum(torch.tanh(x * w)), argnums=(0, 1))(
        tx, torch.tensor(w))
    for got, e in zip(module.grad_f(tx.numpy(), w), expected):
        np.testing.assert_allclose(got, e.numpy(), rtol=1e-12)
    for function in (module.grad_f, module.value_f):
        with pytest.raises(ValueError, match="outside the region this code was traced in"):
            function(-x, w)


def test_a_branch_on_class_labels_becomes_a_check_in_the_module(tmp_path):
    # The labels are an input of the module; the branch their values chose must be checked
    # at every call, never assumed (labels on the other side raise, they are never served).
    def f(w, X, y):
        Z = X @ w
        scale = 2.0 if (y == 0).sum() > 2 else 1.0
        return scale * -np.mean(Z[np.arange(len(y)), y] - np.log(np.exp(Z).sum(axis=1)))

    w, X = RNG.normal(size=(3, 4)), RNG.normal(size=(6, 3))
    y = np.array([0, 0, 0, 1, 2, 3])
    code = wb.export(f, w, X, y, path=tmp_path / "b.py")
    assert "def grad_f(w, X, y):" in code.source
    module = load(tmp_path / "b.py")
    same_branch = np.array([0, 3, 0, 2, 0, 1])
    P = np.exp(X @ w)
    P /= P.sum(axis=1, keepdims=True)
    expected = 2.0 * X.T @ (P - np.eye(4)[same_branch]) / 6
    np.testing.assert_allclose(module.grad_f(w, X, same_branch), expected, rtol=1e-10)
    with pytest.raises(ValueError, match="outside the region this code was traced in"):
        module.grad_f(w, X, np.array([1, 1, 0, 2, 3, 3]))


# ----- where the element export keeps the work -----
def test_scalar_programs_and_several_branches_stay_element_level():
    assert "array-level" not in wb.export(lambda x, y: np.sin(x) * y, 0.5, 2.0).source

    def g(x):
        return np.sum(x ** 3) if x[0] > 0 else np.sum(np.sin(x))

    code = wb.export(g, np.array([1.0, 2.0]), also_at=[(np.array([-1.0, 2.0]),)])
    assert "array-level" not in code.source and "Branch 2" in code.source


def test_what_the_array_level_cannot_trace_is_exported_element_by_element(tmp_path):
    def f(x):
        y = x.copy()
        y[0] = x[1] * x[2]  # a write into an array: element level only
        return np.cumsum(y).sum()

    x = np.array([0.5, -1.5, 2.0])
    assert array_numpy.trace_gradient(f, (x,), 0) is None
    code = wb.export(f, x, path=tmp_path / "c.py")
    assert "array-level" not in code.source and "x_0" in code.source
    # cumsum(y).sum() = 3 y0 + 2 y1 + y2 = 3 x1 x2 + 2 x1 + x2
    expected = np.array([0.0, 3 * x[2] + 2.0, 3 * x[1] + 1.0])
    np.testing.assert_allclose(load(tmp_path / "c.py").grad_f(x), expected, rtol=1e-12)


def test_large_constant_arrays_are_refused_with_advice():
    big = RNG.normal(size=(120, 100))

    def f(x):
        return np.sum(np.sin(x) * big)

    with pytest.raises(ValueError, match=r"constant arrays with 12,000 elements.*pass large "
                                         r"data as float arguments"):
        wb.export(f, np.ones((120, 100)))
    small = big[:10, :10]

    def g(x):
        return np.sum(np.sin(x) * small)

    x = RNG.normal(size=(10, 10))
    module_source = wb.export(g, x).source
    namespace: dict = {}
    exec(compile(module_source, "<exported>", "exec"), namespace)  # our own generated module
    np.testing.assert_array_equal(namespace["grad_g"](x), np.cos(x) * small)


def test_benchmark_runs_at_tiny_sizes():
    from benchmarks.bench_export_arrays import CASES, measure

    rows = measure(tiny=True, rounds=1)  # checks each exported gradient against the hand one
    assert len(rows) == len(CASES) and all(row[3].endswith("x") for row in rows)


# ----- the same program over jax.numpy -----
@pytest.fixture
def jax():
    from tests.conftest import require

    jax = require("jax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield jax
    jax.config.update("jax_enable_x64", previous)


JAX_CASES = {
    "mlp": (mlp, t_mlp, mlp_args(16), (0, 1, 2, 3)),
    "gather": (gather, t_gather, (RNG.normal(size=6), RNG.normal(size=(4, 5)),
                                  np.array([0, 2, 2, 5, 0, 2])), (0, 1)),
    "reductions": (reductions, t_reductions, (RNG.normal(size=(3, 4)),), 0),
    "joined": (joined, t_joined, (RNG.normal(size=3), RNG.normal(size=(2, 2))), (0, 1)),
    "piecewise": (piecewise, t_piecewise, (np.array([-1.0, -0.5, 0.0, 0.5, 2.0]),), 0),
    "contractions": (contractions, t_contractions, (RNG.normal(size=(3, 4)),
                                                    RNG.normal(size=(4, 5)),
                                                    RNG.normal(size=(2, 3, 4))), (0, 1, 2)),
}


@pytest.mark.parametrize("case", sorted(JAX_CASES))
def test_jax_module_matches_torch_eagerly_and_under_jit(tmp_path, jax, torch, case):
    f, tf, args, argnums = JAX_CASES[case]
    code = wb.export(f, *args, argnums=argnums, target="jax", path=tmp_path / f"j_{case}.py")
    assert "array-level trace" in code.source and "jnp." in code.source
    grad = getattr(load(tmp_path / f"j_{case}.py"), f"grad_{f.__name__}")
    floats = module_args(code, f, args)
    expected = torch.func.grad(tf, argnums=argnums)(*[torch.tensor(np.asarray(a)) for a in args])
    expected = expected if isinstance(argnums, tuple) else (expected,)
    for got in (grad(*floats), jax.jit(grad)(*floats)):
        got = got if isinstance(argnums, tuple) else (got,)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(np.asarray(g), e.numpy(), rtol=1e-10, atol=1e-12)


def test_jax_guard_is_checked_under_jit(tmp_path, jax):
    def f(x, w):
        if x.sum() > 0:
            return np.sum(np.tanh(x * w))
        return np.sum(x ** 2 * w)

    x, w = np.array([0.3, -0.2, 0.8]), RNG.normal(size=3)
    wb.export(f, x, w, target="jax", path=tmp_path / "jg.py")
    jitted = jax.jit(load(tmp_path / "jg.py").grad_f)
    np.testing.assert_allclose(np.asarray(jitted(x, w)), w / np.cosh(x * w) ** 2, rtol=1e-12)
    with pytest.raises(Exception, match="outside the region this code was traced in"):
        jax.block_until_ready(jitted(-x, w))
