"""05 Exporting gradient code: numpy, C, JAX and LaTeX; the numpy module used from a plain script."""

from __future__ import annotations

from .cells import code, exercise, md, notebook, title

FILENAME = "05_exporting_gradient_code.ipynb"


def build():
    return notebook("nb05", [
        title("Exporting gradient code", [
            "export the gradient of a numpy function as a standalone numpy module, C99, JAX or "
            "LaTeX with `wb.export`;",
            "read the generated code: one assignment per shared subexpression, shape checks, "
            "the formula in the docstring;",
            "use the exported module from a program that does not have workbench, and call "
            "the C version through `ctypes`;",
            "tell what happens to Python control flow in exported code (the region it is "
            "valid in).",
        ], intro="""
            Workbench differentiates a function once, symbolically. The result does not need
            workbench to run: `wb.export` prints it as code in another language, which you can
            ship in a program, a microcontroller, a JAX model or a paper.
        """),
        code("""
            import ctypes
            import importlib.util
            import json
            import shutil
            import subprocess
            import sys
            import tempfile
            from pathlib import Path

            import numpy as np
            import workbench as wb

            workdir = Path(tempfile.mkdtemp(prefix="wb-export-"))
            rng = np.random.default_rng(7)

            def load(path):
                \"\"\"Import a Python file as a module (what `import` does for a file on sys.path).\"\"\"
                spec = importlib.util.spec_from_file_location(Path(path).stem, path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                return module
        """),
        md("""
            ## The function

            The logistic loss of a linear classifier: three weights `w`, one input vector `x`,
            one label `t` (+1 or -1), $\\ell = \\log(1 + e^{-t\\, x \\cdot w})$. The example
            arguments given to `wb.export` fix the **shapes** (`w` and `x` have three
            elements); the values are parameters of the exported code.
        """),
        code("""
            def loss(w, x, t):
                return np.log1p(np.exp(-t * (x @ w)))

            example = (np.ones(3), np.ones(3), 1.0)
            wb.derivative(loss, *example)
        """),
        md("""
            ## numpy

            The numpy module is self-contained: it imports only numpy. Read it: the formula is
            in the docstring, each input is checked for its shape, and the body is one
            assignment per **distinct** subexpression of the traced graph: the margin
            $t\\, x \\cdot w$ and the factor that multiplies $x$ are computed once, not once per
            weight.
        """),
        code("""
            numpy_code = wb.export(loss, *example, target="numpy", path=workdir / "loss_grad.py")
            print(numpy_code.source)
        """),
        md("""
            Import the file (with the small `load` helper defined at the top) and compare it
            with `wb.grad` at random points:
        """),
        code("""
            loss_grad = load(workdir / "loss_grad.py")

            for _ in range(5):
                w, x, t = rng.standard_normal(3), rng.standard_normal(3), rng.choice([-1.0, 1.0])
                assert np.allclose(loss_grad.grad_loss(w, x, t), wb.grad(loss)(w, x, t))
            try:
                loss_grad.grad_loss(np.ones(4), np.ones(3), 1.0)
            except ValueError as error:
                print("a wrong shape is refused:", error)
        """),
        md("""
            ### From a plain Python script

            The real test of "standalone": a separate Python process, started with `-I`
            (isolated: no environment variables, no user site, not even the script's own
            folder on the path), imports the module, computes a gradient and reports whether
            workbench was ever imported.
        """),
        code('''
            script = workdir / "use_gradient.py"
            script.write_text("""
            import json, sys
            from pathlib import Path

            sys.path.insert(0, str(Path(__file__).parent))   # -I leaves the script's folder out
            import numpy as np
            from loss_grad import grad_loss

            g = grad_loss(np.array([0.1, -0.2, 0.3]), np.array([1.0, 2.0, 3.0]), -1.0)
            print(json.dumps({"gradient": g.tolist(),
                              "workbench imported": "workbench" in sys.modules}))
            """)
            run = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True,
                                 timeout=60)
            assert run.returncode == 0, run.stderr
            result = json.loads(run.stdout)
            print(result)
            assert result["workbench imported"] is False
            expected = wb.grad(loss)(np.array([0.1, -0.2, 0.3]), np.array([1.0, 2.0, 3.0]), -1.0)
            assert np.allclose(result["gradient"], expected)
        '''),
        md("""
            ## C

            The C target writes C99 source and a header with the calling convention: scalars
            by value, arrays as pointers to their elements, the gradient written through an
            output pointer, and a return value of 0 (or 1 when the inputs are outside the
            region the code was traced in, see below). Compile it to a shared library with the
            system's C compiler and call it with `ctypes`. Without a compiler, the cell says so
            and skips.
        """),
        code("""
            c_code = wb.export(loss, *example, target="c", path=workdir / "loss.c")
            print(c_code.header)
        """),
        code("""
            compiler = shutil.which("cc") or shutil.which("gcc")
            if compiler is None:
                print("no C compiler found (cc or gcc): compiling the exported C is skipped")
            else:
                library = workdir / "libloss.so"
                subprocess.run([compiler, "-std=c99", "-O2", "-shared", "-fPIC", "-o", str(library),
                                str(workdir / "loss.c"), "-lm"], check=True, timeout=60)
                grad_loss_c = ctypes.CDLL(str(library)).grad_loss
                double_p = ctypes.POINTER(ctypes.c_double)
                grad_loss_c.argtypes = [double_p, double_p, ctypes.c_double, double_p]
                grad_loss_c.restype = ctypes.c_int

                def grad_in_c(w, x, t):
                    w, x = np.ascontiguousarray(w, float), np.ascontiguousarray(x, float)
                    out = np.zeros(3)
                    status = grad_loss_c(w.ctypes.data_as(double_p), x.ctypes.data_as(double_p),
                                         float(t), out.ctypes.data_as(double_p))
                    assert status == 0
                    return out

                for _ in range(5):
                    w, x, t = rng.standard_normal(3), rng.standard_normal(3), rng.choice([-1.0, 1.0])
                    assert np.allclose(grad_in_c(w, x, t), wb.grad(loss)(w, x, t), rtol=1e-12)
                print("C gradient agrees with wb.grad:", grad_in_c(w, x, t))
        """),
        md("""
            ## JAX

            The JAX target is the same program over `jax.numpy`, so it can be `jax.jit`-ed,
            `vmap`-ed or differentiated again by JAX. JAX computes in float32 unless
            `jax_enable_x64` is on; we turn it on to compare to float64 precision, and JAX's own
            `jax.grad` of the same loss is the oracle.
        """),
        code("""
            try:
                import jax
                import jax.numpy as jnp
            except ImportError:
                jax = None
                print("jax is not installed: the JAX export is skipped")

            if jax is not None:
                jax.config.update("jax_enable_x64", True)
                wb.export(loss, *example, target="jax", path=workdir / "loss_grad_jax.py")
                loss_grad_jax = load(workdir / "loss_grad_jax.py")

                fast = jax.jit(loss_grad_jax.grad_loss)
                oracle = jax.grad(lambda w, x, t: jnp.log1p(jnp.exp(-t * (x @ w))))
                w, x, t = rng.standard_normal(3), rng.standard_normal(3), rng.choice([-1.0, 1.0])
                assert np.allclose(fast(w, x, t), oracle(w, x, t))
                assert np.allclose(fast(w, x, t), wb.grad(loss)(w, x, t))
                # vmap over a batch of inputs, as with any JAX function
                xs = rng.standard_normal((4, 3))
                batch = jax.vmap(loss_grad_jax.grad_loss, in_axes=(None, 0, None))(w, xs, t)
                assert np.allclose(batch, [wb.grad(loss)(w, xi, t) for xi in xs])
                print(batch)
        """),
        md("""
            ## LaTeX

            For a report or a paper: the simplified formulas in an `align` environment.
            `str()` of the result (and the file written with `path=`) is the LaTeX source; as
            the cell's value, Jupyter shows it as mathematics.
        """),
        code("""
            latex_code = wb.export(lambda x, y: x ** 2 * np.sin(y), argnums=(0, 1), target="latex")
            print(str(latex_code))
            assert r"\\begin{align}" in str(latex_code) and r"\\sin" in str(latex_code)
            latex_code
        """),
        md("""
            ## Control flow: code that knows where it is valid

            A Python `if` on a traced value is taken at the example arguments, and exported
            code is only that branch. So the exported function checks the branch condition and
            refuses inputs outside it, instead of silently computing the wrong derivative.
            `also_at=[...]` adds example points whose branches are exported too.
        """),
        code("""
            def piecewise(x):
                if x > 0:
                    return x ** 2
                return -x

            one_branch = wb.export(piecewise, 2.0, path=workdir / "piecewise_one.py")
            piecewise_one = load(workdir / "piecewise_one.py")
            assert piecewise_one.grad_piecewise(3.0) == 6.0
            try:
                piecewise_one.grad_piecewise(-3.0)
                raise AssertionError("the exported code should refuse x <= 0")
            except ValueError as error:
                print(error)
        """),
        md("""
            ## Exercises
        """),
        exercise(1, """
            Export `piecewise` again with `also_at=[(-2.0,)]`, load it, and check that it now
            gives the right derivative on both sides ($2x$ for $x > 0$, $-1$ otherwise).
        """, """
            both = wb.export(piecewise, 2.0, also_at=[(-2.0,)], path=workdir / "piecewise_both.py")
            piecewise_both = load(workdir / "piecewise_both.py")
            for point in (-3.0, -0.5, 0.0, 0.5, 3.0):
                assert piecewise_both.grad_piecewise(point) == (2 * point if point > 0 else -1.0)
            print(both.source.split('\"\"\"')[1])
        """),
        exercise(2, """
            `with_value=True` also exports the function's value as `value_<name>`. Export
            `loss` with it, and check `value_loss` against `loss` itself.
        """, """
            with_value = wb.export(loss, *example, with_value=True, path=workdir / "loss_value.py")
            loss_value = load(workdir / "loss_value.py")
            w, x, t = rng.standard_normal(3), rng.standard_normal(3), 1.0
            assert np.isclose(loss_value.value_loss(w, x, t), loss(w, x, t))
            with_value.functions
        """),
        exercise(3, """
            The command line does the same without writing Python: export the gradient of the
            expression `"sum(tanh(w) * x)"` with `w` and `x` of shape 3 to a numpy file with
            `python -m workbench export ... --shape w=3 --shape x=3 -o FILE`, load it, and
            check it against $\\nabla_w = (1 - \\tanh^2 w)\\,x$.
        """, """
            target = workdir / "cli_grad.py"
            run = subprocess.run([sys.executable, "-m", "workbench", "export", "sum(tanh(w) * x)",
                                  "--shape", "w=3", "--shape", "x=3", "--target", "numpy", "-o", str(target)],
                                 capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stderr
            print(run.stdout)
            cli_grad = load(target)
            names = [n for n in dir(cli_grad) if n.startswith("grad_")]
            w, x = rng.standard_normal(3), rng.standard_normal(3)
            assert np.allclose(getattr(cli_grad, names[0])(w, x), (1 - np.tanh(w) ** 2) * x)
            names
        """),
        md("""
            ---
            The files this notebook wrote live in a temporary folder; remove it.
        """),
        code("""
            shutil.rmtree(workdir)
        """),
    ])
