"""python -m workbench export: expressions and module:function, every target, hostile input."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import workbench as wb
from workbench.cli import main


def load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_help_has_examples():
    result = run("export", "--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and "--target {numpy,c,jax,torch,latex}" in result.stdout


def test_expression_to_numpy_module_in_a_subprocess(tmp_path):
    out = tmp_path / "g.py"
    result = run("export", "sum(tanh(w) * x) + x0**2", "--shape", "w=3", "--shape", "x=3",
                 "--argnums", "0,1,2", "--target", "numpy", "-o", str(out))
    assert result.returncode == 0, result.stderr
    module = load(out)
    w, x, x0 = np.array([0.1, -0.2, 0.3]), np.array([1.0, 2.0, 3.0]), 0.7
    gw, gx, g0 = module.grad_expression(w, x, x0)

    def f(w, x, x0):
        return np.sum(np.tanh(w) * x) + x0 ** 2

    ew, ex, e0 = wb.grad(f, argnums=(0, 1, 2))(w, x, x0)
    np.testing.assert_allclose(gw, ew, rtol=1e-13)
    np.testing.assert_allclose(gx, ex, rtol=1e-13)
    assert g0 == pytest.approx(float(e0))


def test_module_function_to_c_files(tmp_path, monkeypatch):
    (tmp_path / "mymodel.py").write_text(
        "import numpy as np\n\ndef loss(theta, scale):\n"
        "    return scale * np.sum(np.sin(theta) ** 2)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    status = main(["export", "mymodel:loss", "--shape", "theta=2,2", "--target", "c",
                   "-o", str(tmp_path / "loss.c"), "--name", "my_loss"])
    assert status == 0
    header = (tmp_path / "loss.h").read_text()
    assert "int grad_my_loss(const double *theta, double scale, double *grad_theta);" in header
    assert '#include "loss.h"' in (tmp_path / "loss.c").read_text()


def test_stdout_and_latex(capsys):
    assert main(["export", "exp(x) * sin(x)", "--target", "latex"]) == 0
    out = capsys.readouterr().out
    assert r"\frac{d\,\mathrm{expression}}{d x} &=" in out and r"\begin{align}" in out


@pytest.mark.parametrize("hostile", [
    "__import__('os').system('touch pwned')",
    "open('pwned', 'w')",
    "().__class__.__bases__[0].__subclasses__()",
    "x.__class__",
    "(lambda: 1)()",
    "eval('1')",
    "[sin(x) for x in y]",
    "x if y else z",
    "'text'",
    "x[0]",
    "sin(x=1)",
    "globals()",
])
def test_hostile_expressions_are_refused(hostile, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status = main(["export", hostile, "-o", str(tmp_path / "out.py")])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("error: ") and ("refused" in err or "unknown function" in err
                                          or "does not parse" in err)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out.py").exists()


@pytest.mark.parametrize("args, message", [
    (["x*y", "--shape", "w=3"], "w: not a parameter"),
    (["x*y", "--shape", "x=a"], "expects integers"),
    (["x*y", "--at", "x=nan?"], "expects a number"),
    (["x*y", "--at", "1x=2"], "NAME=VALUE"),
    (["x*y", "--argnums", "one"], "--argnums expects integers"),
    (["x*y", "--argnums", "5"], "argnums=5"),
    (["no_such_module_xyz:f"], "cannot import module"),
])
def test_bad_arguments_give_clear_errors(args, message, capsys):
    assert main(["export", *args]) == 1
    assert message in capsys.readouterr().err


def test_usage_errors_exit_2():
    result = run("export", "x", "--target", "fortran")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_several_branches_from_the_command_line(tmp_path):
    (tmp_path / "piece.py").write_text(
        "def f(x, y):\n    if x > y:\n        return x * x * y\n    return x - y\n")
    result = run("export", "piece:f", "--argnums", "0,1", "--at", "x=2", "--at", "y=1",
                 "--also-at", "x=0 y=1", "-o", str(tmp_path / "g.py"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    module = load(tmp_path / "g.py")
    assert [float(v) for v in module.grad_f(3.0, 2.0)] == [12.0, 9.0]
    assert [float(v) for v in module.grad_f(1.0, 2.0)] == [1.0, -1.0]
