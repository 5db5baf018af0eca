"""Clear errors, never an internal traceback: exported code that compiles whatever the
parameters are called, a command line that answers in one line, workbench errors for misuse
found by probing, and tracebacks trimmed to the user's own frames (with a switch).

Expected values come from mathematics, numpy and torch run live.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import textwrap
import traceback

import numpy as np
import pytest
from conftest import C_COMPILER

import workbench as wb
from workbench.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def load_source(source: str) -> dict:
    namespace: dict = {}
    exec(compile(source, "<exported>", "exec"), namespace)  # our own generated code
    return namespace


# ----- exported Python that compiles: an empty array parameter -----

@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_export_with_an_empty_array_parameter(target):
    if target == "torch":
        torch = pytest.importorskip("torch")
    f = lambda x, w: np.sin(x) * 2.0 + (w ** 2).sum()  # noqa: E731
    code = wb.export(f, 0.5, np.ones((0, 2)), argnums=(0, 1), target=target)
    module = load_source(code.source)
    empty = np.ones((0, 2)) if target == "numpy" else torch.ones((0, 2), dtype=torch.float64)
    gx, gw = module["grad_f"](0.3, empty)
    assert float(gx) == pytest.approx(2.0 * np.cos(0.3), rel=1e-15)
    assert tuple(gw.shape) == (0, 2)


@pytest.mark.usefixtures("c_compiler")
def test_c_export_with_an_empty_array_parameter_compiles(tmp_path):
    code = wb.export(lambda x, w: x * 3.0 + w.sum(), 0.5, np.ones(0), argnums=(0, 1),
                     target="c", path=tmp_path / "e.c")
    subprocess.run([C_COMPILER, "-std=c99", "-Wall", "-Werror", "-c", str(tmp_path / "e.c"), "-o",
                    str(tmp_path / "e.o")], check=True, capture_output=True, timeout=120)
    assert "grad_f" in code.header


# ----- exported C that compiles: parameters named like C keywords and libm functions -----

NAMES = ["int", "double", "sin", "exp", "y0", "j1", "float", "char", "value", "grad_x", "x",
         "wb_max2", "NAN"]


def _awkwardly_named():
    namespace: dict = {"np": np}
    params = ", ".join(NAMES)
    body = " * ".join(f"np.sin({n})" if k % 2 else f"np.exp(0.1 * {n})" for k, n in enumerate(NAMES))
    exec(f"def f({params}):\n    return {body}\n", namespace)  # a fixed test function
    return namespace["f"]


def _expected_gradient(point: np.ndarray) -> np.ndarray:
    factors = np.array([np.sin(v) if k % 2 else np.exp(0.1 * v) for k, v in enumerate(point)])
    slopes = np.array([np.cos(v) if k % 2 else 0.1 * np.exp(0.1 * v) for k, v in enumerate(point)])
    return np.array([slopes[k] * np.prod(np.delete(factors, k)) for k in range(len(point))])


@pytest.mark.usefixtures("c_compiler")
def test_c_export_with_keyword_and_libm_parameter_names(tmp_path):
    f = _awkwardly_named()
    point = np.linspace(0.2, 1.4, len(NAMES))
    wb.export(f, *point, argnums=tuple(range(len(NAMES))), target="c", path=tmp_path / "k.c")
    lib = tmp_path / "libk.so"
    build = subprocess.run([C_COMPILER, "-std=c99", "-Wall", "-Werror", "-shared", "-fPIC", "-o",
                            str(lib), str(tmp_path / "k.c"), "-lm"],
                           capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    grad_f = ctypes.CDLL(str(lib)).grad_f
    grad_f.restype = ctypes.c_int
    outs = [ctypes.c_double() for _ in NAMES]
    status = grad_f(*[ctypes.c_double(v) for v in point], *[ctypes.byref(o) for o in outs])
    assert status == 0
    np.testing.assert_allclose([o.value for o in outs], _expected_gradient(point), rtol=1e-12)


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_python_export_with_builtin_and_helper_parameter_names(target):
    if target == "torch":
        torch = pytest.importorskip("torch")
    f = _awkwardly_named()
    point = np.linspace(0.2, 1.4, len(NAMES))
    code = wb.export(f, *point, argnums=tuple(range(len(NAMES))), target=target)
    args = list(point) if target == "numpy" else [torch.tensor(v) for v in point]
    got = load_source(code.source)["grad_f"](*args)
    np.testing.assert_allclose([float(g) for g in got], _expected_gradient(point), rtol=1e-12)


# ----- the command line: one line, exit status 2 -----

def _run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=ENV)


@pytest.mark.parametrize("expression", ["10**400 * x", "1/0 * x", "x ** 2 ** 10 ** 10"])
def test_cli_overflow_and_division_by_zero_are_one_line(expression):
    result = _run_cli("export", expression)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--at" in lines[0]


@pytest.mark.parametrize("where", ["missing directory", "a directory", "under a file"])
def test_cli_unwritable_output_is_one_line(tmp_path, where):
    (tmp_path / "file").write_text("")
    output = {"missing directory": tmp_path / "no" / "such" / "g.py", "a directory": tmp_path,
              "under a file": tmp_path / "file" / "g.c"}[where]
    result = _run_cli("export", "x**2", "--target", "c", "-o", str(output))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(output) in lines[0], result.stderr


@pytest.mark.parametrize("module_text, phrase", [
    ('def f(x):\n    return {}["k"] * x\n', "raised KeyError while being traced"),
    ("def f(x:\n", "importing it raised SyntaxError"),
])
def test_cli_failing_user_modules_are_one_line(tmp_path, module_text, phrase):
    (tmp_path / "usermod.py").write_text(module_text)
    result = _run_cli("export", "usermod:f", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0], result.stderr


def test_export_to_an_unwritable_path_is_a_workbench_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(wb.WorkbenchError, match="cannot write") as error:
        wb.export(lambda x: x ** 2, 0.5, path=tmp_path / "file" / "g.py")
    assert isinstance(error.value, ValueError)


def test_cli_errors_still_print_one_line_in_process(capsys):
    assert main(["export", "1/0 * x"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# ----- misuse found by probing: workbench errors that name the argument -----

@pytest.mark.parametrize("call,phrase", [
    (lambda: wb.derivative(lambda x: x ** 2, order=0), "order"),
    (lambda: wb.derivative(lambda x: x ** 2, order=-1), "order"),
    (lambda: wb.derivative(lambda x: x ** 2, order=1.5), "order"),
    (lambda: wb.derivative(lambda x: x ** 2, order="2"), "order"),
    (lambda: wb.export(lambda x: x ** 2, 0.5, name=3), "name"),
    (lambda: wb.export(lambda x: x ** 2, 0.5, name="two words"), "name"),
    (lambda: wb.export(lambda x: x ** 2, 0.5, also_at=[1.0]), "also_at"),
    (lambda: wb.export(lambda x: x ** 2, 0.5, also_at=[(1.0, 2.0)]), "also_at"),
    (lambda: wb.export(lambda x: x ** 2, 0.5, path=3), "path"),
    (lambda: wb.export(3, 0.5), "callable"),
    (lambda: wb.vmap(3), "callable"),
    (lambda: wb.vjp(3, np.ones(2)), "callable"),
    (lambda: wb.jvp(3, (np.ones(2),), (np.ones(2),)), "callable"),
    (lambda: wb.vmap(np.sin, chunk_size=0), "chunk_size"),
    (lambda: wb.vmap(np.sin, randomness="sometimes"), "randomness"),
])
def test_misuse_is_a_workbench_error_naming_the_argument(call, phrase):
    with pytest.raises(wb.WorkbenchError, match=phrase) as error:
        call()
    assert isinstance(error.value, (TypeError, ValueError))


def test_vmap_of_an_empty_batch_matches_torch():
    torch = pytest.importorskip("torch")
    for shape, out_dims in [((0, 3), 0), ((0, 2, 2), 1)]:
        ours = wb.vmap(lambda x: x * np.sin(x), out_dims=out_dims)(np.ones(shape))
        theirs = torch.func.vmap(lambda x: x * torch.sin(x), out_dims=out_dims)(
            torch.ones(shape, dtype=torch.float64))
        assert ours.shape == tuple(theirs.shape)


# ----- tracebacks end in the user's code -----

def _loss(w):
    import math

    return math.sin(w.sum())  # the user's mistake: math.sin of a traced value


def _workbench_frames(error: BaseException) -> list[str]:
    package = os.path.join(ROOT, "workbench") + os.sep
    return [f"{f.filename}:{f.name}" for f in traceback.extract_tb(error.__traceback__)
            if f.filename.startswith(package)]


@pytest.mark.parametrize("call", [
    lambda: wb.grad(_loss)(np.ones(3)),
    lambda: wb.vmap(wb.grad(_loss))(np.ones((2, 3))),
    lambda: wb.jacrev(lambda w: np.array([_loss(w)]))(np.ones(3)),
    lambda: wb.vjp(_loss, np.ones(3)),
    lambda: wb.grad(lambda w: (w * 2).sum() * np.ones(2))(np.ones(3)),  # not a scalar
    lambda: wb.grad(lambda a, b: a * b, argnums=2)(1.0, 2.0),
    lambda: wb.export(_loss, np.ones(3)),
    lambda: wb.derivative(_loss, np.ones(3)),
])
def test_user_errors_show_at_most_two_workbench_frames(call):
    with pytest.raises(wb.WorkbenchError) as error:
        call()
    frames = _workbench_frames(error.value)
    assert len(frames) <= 2, frames
    names = [f.name for f in traceback.extract_tb(error.value.__traceback__)]
    assert names[:2] == ["test_user_errors_show_at_most_two_workbench_frames", "<lambda>"]
    if "_loss" in call.__code__.co_names:
        assert "_loss" in names  # the line of the user's code that went wrong


def test_the_switch_restores_internal_frames():
    wb.config.show_internal_frames = True
    try:
        with pytest.raises(wb.TracedConversionError) as error:
            wb.grad(_loss)(np.ones(3))
    finally:
        wb.config.show_internal_frames = False
    assert len(_workbench_frames(error.value)) > 5


def test_the_environment_variable_restores_internal_frames():
    code = textwrap.dedent("""
        import math, traceback, numpy as np, workbench as wb
        try:
            wb.grad(lambda w: math.sin(w.sum()))(np.ones(3))
        except wb.WorkbenchError as e:
            print(sum("/workbench/" in f.filename for f in traceback.extract_tb(e.__traceback__)))
    """)
    counts = {}
    for mode in ("full", ""):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120, env=dict(ENV, WORKBENCH_TRACEBACK=mode))
        assert out.returncode == 0, out.stderr
        counts[mode] = int(out.stdout)
    assert counts[""] <= 2 < 5 < counts["full"]


def test_trimmed_traceback_says_how_to_see_everything():
    with pytest.raises(wb.WorkbenchError) as error:
        wb.grad(_loss)(np.ones(3))
    text = "".join(traceback.format_exception(error.value))
    assert "WORKBENCH_TRACEBACK=full" in text and "show_internal_frames" in text


# ----- numpy's refusals of an operation on traced values: workbench errors that say where -----

OPERATIONS = [
    ("reshape", lambda x: x.reshape(3).sum()),
    ("index out of range", lambda x: x[5]),
    ("stack of unequal shapes", lambda x: np.stack([x, np.ones(3)]).sum()),
    ("concatenate of unequal ranks", lambda x: np.concatenate([x, np.ones((2, 2))]).sum()),
    ("transpose of a vector", lambda x: x.transpose(1, 0).sum()),
    ("squeeze of a long axis", lambda x: x.squeeze(0).sum()),
]


@pytest.mark.parametrize("name,f", OPERATIONS, ids=[o[0] for o in OPERATIONS])
def test_refused_operations_are_workbench_errors_of_numpys_class(name, f):
    with pytest.raises((ValueError, IndexError)) as plain:  # numpy on a plain array, live
        f(np.ones(2))
    with pytest.raises(wb.WorkbenchError) as traced:
        wb.grad(f)(np.ones(2))
    error = traced.value
    family = ValueError if isinstance(plain.value, ValueError) else IndexError
    assert isinstance(error, family)
    original = getattr(error, "original", None)
    if original is not None:  # numpy's refusal, converted: numpy's words, and where
        assert isinstance(original, family)
        assert str(original) in str(error) and "line" in str(error)
    else:  # refused by workbench's own check: the traceback shows the user's line
        frames = [frame.f_code for frame, _ in traceback.walk_tb(error.__traceback__)]
        assert f.__code__ in frames
    assert len(_workbench_frames(error)) <= 2


def test_the_users_own_exceptions_keep_their_type():
    def f(x):
        raise KeyError("mine")

    with pytest.raises(KeyError, match="mine") as error:
        wb.grad(f)(1.0)
    assert not isinstance(error.value, wb.WorkbenchError)
    with pytest.raises(TypeError, match="<<"):  # Python's own refusal, in the user's frame
        wb.grad(lambda x: x << 1)(1.0)
