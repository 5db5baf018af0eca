"""wb.export(target="c"): compiled with the system's C compiler, loaded with ctypes, compared
against wb.grad and (at the non-smooth points) against torch."""

from __future__ import annotations

import ctypes
import subprocess

import numpy as np
import pytest
from conftest import C_COMPILER

import workbench as wb

pytestmark = pytest.mark.usefixtures("c_compiler")


def compile_export(tmp_path, func, *args, argnums=0, stem="grad", with_value=False):
    code = wb.export(func, *args, argnums=argnums, target="c", path=tmp_path / f"{stem}.c",
                     with_value=with_value)
    lib = tmp_path / f"lib{stem}.so"
    subprocess.run([C_COMPILER, "-std=c99", "-O2", "-Wall", "-Wextra", "-pedantic", "-Werror", "-shared",
                    "-fPIC", "-o", str(lib), str(tmp_path / f"{stem}.c"), "-lm"],
                   check=True, capture_output=True, text=True, timeout=120)
    return code, ctypes.CDLL(str(lib))


def call(fn, args, out_sizes):
    """Call an exported C function: scalars by value, arrays by pointer, outputs by pointer."""
    c_args, keep = [], []
    for a in args:
        if np.ndim(a) == 0:
            c_args.append(ctypes.c_double(float(a)))
        else:
            buf = np.ascontiguousarray(a, dtype=np.float64)
            keep.append(buf)
            c_args.append(buf.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
    outs = [np.zeros(n) for n in out_sizes]
    c_args += [o.ctypes.data_as(ctypes.POINTER(ctypes.c_double)) for o in outs]
    fn.restype = ctypes.c_int
    status = fn(*c_args)
    return status, outs


def rosenbrock_mlp(x, w):
    r = np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    hidden = np.tanh(w @ x[:3])
    return r + np.sum(wb.sigmoid(hidden) * np.log1p(x[:2] ** 2)) + np.max(x) + wb.softplus(x[0])


def test_compiled_gradient_matches_wb_grad(tmp_path):
    x0, w0 = np.linspace(-0.5, 0.7, 5), np.arange(6.0).reshape(2, 3) / 7
    code, lib = compile_export(tmp_path, rosenbrock_mlp, x0, w0, argnums=(0, 1), with_value=True)
    assert "int grad_rosenbrock_mlp(const double *x, const double *w, double *grad_x, " \
        "double *grad_w);" in code.header
    rng = np.random.default_rng(1)
    for _ in range(5):
        x, w = rng.normal(size=5), rng.normal(size=(2, 3))
        status, (gx, gw) = call(lib.grad_rosenbrock_mlp, (x, w), (5, 6))
        ex, ew = wb.grad(rosenbrock_mlp, argnums=(0, 1))(x, w)
        assert status == 0
        np.testing.assert_allclose(gx, ex, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gw.reshape(2, 3), ew, rtol=1e-12, atol=1e-12)
        status, (value,) = call(lib.value_rosenbrock_mlp, (x, w), (1,))
        assert value[0] == pytest.approx(float(rosenbrock_mlp(x, w)), rel=1e-12)


def test_scalar_parameters_by_value(tmp_path):
    _, lib = compile_export(tmp_path, lambda a, b: a ** 3 * np.sin(b) / (1 + b * b), 0.5, 0.25,
                            argnums=(0, 1))
    status, (ga, gb) = call(lib.grad_f, (1.5, -0.75), (1, 1))
    ea, eb = wb.grad(lambda a, b: a ** 3 * np.sin(b) / (1 + b * b), argnums=(0, 1))(1.5, -0.75)
    assert status == 0
    assert ga[0] == pytest.approx(float(ea), rel=1e-13) and gb[0] == pytest.approx(float(eb))


def test_non_smooth_conventions_match_torch(tmp_path, torch):
    def f(a, b):
        return (wb.relu(a) + np.abs(b) + np.maximum(a, b) + np.minimum(a, -b)
                + np.clip(a, -1.0, 0.0) + np.sign(a) * b + wb.softplus(30.0 * a))

    def tf(a, b):
        return (torch.relu(a) + torch.abs(b) + torch.maximum(a, b) + torch.minimum(a, -b)
                + torch.clamp(a, -1.0, 0.0) + torch.sign(a) * b
                + torch.nn.functional.softplus(30.0 * a))

    _, lib = compile_export(tmp_path, f, 0.5, 0.25, argnums=(0, 1))
    for a, b in [(0.0, 0.0), (1.0, 1.0), (-1.0, 0.0), (0.0, -2.0), (-1.0, 1.0), (1.0, -1.0)]:
        ta, tb = torch.func.grad(tf, argnums=(0, 1))(torch.tensor(a), torch.tensor(b))
        status, (ga, gb) = call(lib.grad_f, (a, b), (1, 1))
        assert status == 0
        assert (ga[0], gb[0]) == (float(ta), float(tb)), (a, b)


def test_outside_the_traced_branch_returns_1(tmp_path):
    def f(x):
        if x[0] > x[1]:
            return np.sum(x ** 2)
        return np.sum(x)

    _, lib = compile_export(tmp_path, f, np.array([2.0, 1.0]))
    status, (g,) = call(lib.grad_f, (np.array([3.0, 1.0]),), (2,))
    assert status == 0 and g.tolist() == [6.0, 2.0]
    status, (g,) = call(lib.grad_f, (np.array([0.0, 1.0]),), (2,))
    assert status == 1 and g.tolist() == [0.0, 0.0]  # not written


def test_ieee_special_values(tmp_path):
    _, lib = compile_export(tmp_path, lambda x: np.log(x) + np.sqrt(x), 1.0)
    status, (g,) = call(lib.grad_f, (0.0,), (1,))
    assert status == 0 and g[0] == np.inf


def test_several_traced_branches(tmp_path):
    def f(x):
        if x[0] > 0:
            return np.sum(x ** 2)
        return np.sum(np.sin(x))

    code = wb.export(f, np.array([1.0, 2.0]), also_at=[(np.array([-1.0, 2.0]),)], target="c",
                     path=tmp_path / "br.c")
    assert "static int grad_f_branch1(" in code.source
    lib = tmp_path / "libbr.so"
    subprocess.run([C_COMPILER, "-std=c99", "-Wall", "-Werror", "-shared", "-fPIC", "-o", str(lib),
                    str(tmp_path / "br.c"), "-lm"], check=True, capture_output=True, timeout=120)
    fn = ctypes.CDLL(str(lib)).grad_f
    for x in ([3.0, 1.0], [-0.5, 0.25]):
        status, (g,) = call(fn, (np.array(x),), (2,))
        assert status == 0
        np.testing.assert_allclose(g, wb.grad(f)(np.array(x)), rtol=1e-14)
