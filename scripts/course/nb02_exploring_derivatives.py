"""02 Exploring derivatives: wb.explore on textbook functions; tangents, Taylor curves, gradients."""

from __future__ import annotations

from .cells import code, exercise, md, notebook, title

FILENAME = "02_exploring_derivatives.ipynb"


def build():
    return notebook("nb02", [
        title("Exploring derivatives", [
            "read $f$, $f'$ and $f''$ off one picture and connect their shapes (slopes, "
            "turning points, inflection points);",
            "use the tangent line and the second-order Taylor curve as local approximations, "
            "and measure how fast their errors shrink;",
            "explore a function of two variables: contours, the gradient field, the Hessian's "
            "eigen-directions;",
            "drive everything from a text such as `\"x**2*sin(x)\"` or from a Python function.",
        ], intro="""
            `wb.explore` is an interactive explorer: give it a function of one variable (a
            Python function or a text) and move the slider. The numbers it shows come from the
            same compiled derivative you get from `wb.grad`, so this notebook also checks the
            mathematics behind each picture in code.
        """),
        code("""
            import matplotlib.pyplot as plt
            import numpy as np
            import workbench as wb
        """),
        md("""
            ## The explorer

            Type a function as text: the text goes through workbench's whitelisting parser
            (numbers, `x`, `+ - * / **`, and functions such as `sin`, `exp`, `log`; nothing
            else is evaluated). What you see:

            - the plot of $f$, $f'$ and $f''$ over a range you can change;
            - a slider for the point $x_0$, with the tangent line there and (toggle) the
              second-order Taylor curve;
            - $f(x_0)$, $f'(x_0)$, $f''(x_0)$ as numbers, the derivative as a formula, a
              `wb.check` badge, and a button that shows the exported numpy code.

            Moving the slider evaluates the compiled derivative: nothing is traced again.
        """),
        code("""
            explorer = wb.explore("x**2*sin(x)", x_range=(-4, 4), x0=1.0)
            explorer
        """),
        md("""
            ### Driving the explorer from code

            Everything on the panel is an attribute you can set or read: `x0` is the slider,
            `taylor` the checkbox, `values` the numbers at the point, `lines` the drawn curves,
            `check_report` the `wb.check` result behind the badge. Run the next cell and watch
            the explorer above move to $x_0 = 2$ and show the Taylor curve. The assertions
            check the numbers against `wb.grad` and the drawn tangent against its equation.
        """),
        code("""
            def f(x):
                return x ** 2 * np.sin(x)

            explorer.x0.value = 2.0
            explorer.taylor.value = True
            values = explorer.values
            assert np.isclose(values["f"], f(2.0))
            assert np.isclose(values["df"], wb.grad(f)(2.0))
            assert np.isclose(values["d2f"], wb.grad(wb.grad(f))(2.0))

            xs, ys = explorer.lines["tangent"].get_data()
            assert np.allclose(ys, f(2.0) + wb.grad(f)(2.0) * (np.asarray(xs) - 2.0))
            assert explorer.lines["taylor"].get_visible() and explorer.check_report.passed
            values
        """),
        md("""
            A typo in the text box is reported inside the explorer, and it keeps working: the
            plot stays on the last good function until the text is fixed.
        """),
        code("""
            explorer.text.value = "x**2 * sin(x"          # a missing parenthesis
            print(explorer.message_text)
            assert explorer.message_text and np.isclose(explorer.values["df"], wb.grad(f)(2.0))
            explorer.text.value = "x**2*sin(x)"           # fixed: the message goes away
            assert not explorer.message_text
        """),
        md("""
            ## The tangent line

            The tangent at $x_0$ is the line through $(x_0, f(x_0))$ with slope $f'(x_0)$:

            $$T_1(x) = f(x_0) + f'(x_0)\\,(x - x_0).$$

            It is the best **linear** approximation near $x_0$: its error shrinks like $h^2$
            when you move a distance $h$ away, and the error divided by $h^2$ tends to
            $f''(x_0)/2$. The second-order Taylor curve adds the curvature,

            $$T_2(x) = T_1(x) + \\tfrac12 f''(x_0)\\,(x - x_0)^2,$$

            and its error shrinks like $h^3$ (divided by $h^3$ it tends to $f'''(x_0)/6$).
            Let us check both claims with derivatives from `wb.grad`.
        """),
        code("""
            df = wb.grad(f)
            d2f = wb.grad(df)
            d3f = wb.grad(d2f)

            x0 = 1.0
            def tangent(x):
                return f(x0) + df(x0) * (x - x0)

            def taylor2(x):
                return tangent(x) + 0.5 * d2f(x0) * (x - x0) ** 2

            print(" h        error T1 / h^2   error T2 / h^3")
            for h in (1e-1, 1e-2, 1e-3):
                e1 = (f(x0 + h) - tangent(x0 + h)) / h ** 2
                e2 = (f(x0 + h) - taylor2(x0 + h)) / h ** 3
                print(f"{h:6.0e}   {e1:14.6f}   {e2:14.6f}")
            print(f"limits:  f''/2 = {d2f(x0) / 2:.6f}   f'''/6 = {d3f(x0) / 6:.6f}")

            h = 1e-3
            assert np.isclose((f(x0 + h) - tangent(x0 + h)) / h ** 2, d2f(x0) / 2, rtol=1e-2)
            assert np.isclose((f(x0 + h) - taylor2(x0 + h)) / h ** 3, d3f(x0) / 6, rtol=1e-2)
        """),
        md("""
            The same picture as a static figure (it stays readable in a notebook viewer
            without a kernel):
        """),
        code("""
            xs = np.linspace(-4, 4, 400)
            fig, ax = plt.subplots(figsize=(6, 3.5))
            ax.plot(xs, f(xs), label="$f$")
            ax.plot(xs, wb.vmap(df)(xs), label="$f'$")
            ax.plot(xs, wb.vmap(d2f)(xs), label="$f''$", alpha=0.6)
            near = np.linspace(x0 - 1.5, x0 + 1.5, 100)
            ax.plot(near, tangent(near), "k--", label="tangent at $x_0$")
            ax.plot(near, taylor2(near), "k:", label="Taylor, order 2")
            ax.plot([x0], [f(x0)], "ko")
            ax.set_ylim(-15, 15)
            ax.axhline(0, color="grey", lw=0.5)
            ax.legend(fontsize=8, ncol=2)
            plt.close(fig)
            fig
        """),
        md("""
            Reading the picture: where $f'$ crosses zero, $f$ has a horizontal tangent (a
            maximum or a minimum); where $f''$ crosses zero, $f$ changes from curving up to
            curving down (an inflection point). The formula for $f'$:
        """),
        code("""
            wb.derivative(f)
        """),
        md("""
            ## Textbook functions

            The explorer takes a Python function just as well. The bell curve
            $e^{-x^2}$ has its inflection points at $\\pm 1/\\sqrt2$, where $f'' = 0$ and
            $|f'|$ is largest. Put the slider there and watch the tangent.
        """),
        code("""
            def bell(x):
                return np.exp(-x ** 2)

            d2_bell = wb.grad(wb.grad(bell))
            inflection = 1 / np.sqrt(2)
            assert np.isclose(d2_bell(inflection), 0.0) and np.isclose(d2_bell(-inflection), 0.0)
            grid = np.linspace(0, 3, 3001)
            steepest = grid[np.argmax(np.abs(wb.vmap(wb.grad(bell))(grid)))]
            assert abs(steepest - inflection) < 1e-3
            wb.explore(bell, x_range=(-3, 3), x0=inflection)
        """),
        md("""
            The logarithm is defined only for $x > 0$. Choose the range accordingly: its
            derivative $1/x$ grows without bound near 0, and the tangent at $x_0 = 1$ is
            $y = x - 1$.
        """),
        code("""
            assert np.isclose(wb.grad(np.log)(1.0), 1.0)
            wb.explore("log(x)", x_range=(0.05, 5), x0=1.0)
        """),
        md("""
            ## Two variables: contours and the gradient field

            For $f(x, y)$ the derivative is the **gradient** $\\nabla f = (f_x, f_y)$, a vector
            at every point. It points uphill, in the direction of steepest ascent, and it is
            perpendicular to the contour line through that point. The explorer draws the
            contours, the gradient field, the gradient at a chosen point and the Hessian's
            eigen-directions there.

            Our example is a Rosenbrock-style valley, $f(x, y) = (1 - x)^2 + 5\\,(y - x^2)^2$,
            with its minimum at $(1, 1)$ at the bottom of a curved valley.
        """),
        code("""
            valley_explorer = wb.explore("(1 - x)**2 + 5*(y - x**2)**2", x_range=(-1.5, 1.7),
                                         y_range=(-0.5, 2.2), x0=-0.5, y0=1.5)
            valley_explorer
        """),
        md("""
            The gradient field by hand: `wb.grad(..., argnums=(0, 1))` gives $(f_x, f_y)$ for one
            point, `wb.vmap` evaluates it over a whole grid in one call.
        """),
        code("""
            def valley(x, y):
                return (1 - x) ** 2 + 5 * (y - x ** 2) ** 2

            gradient = wb.vmap(wb.grad(valley, argnums=(0, 1)))
            X, Y = np.meshgrid(np.linspace(-1.5, 1.7, 17), np.linspace(-0.5, 2.2, 15))
            GX, GY = gradient(X.ravel(), Y.ravel())

            fig, ax = plt.subplots(figsize=(5.5, 4))
            grid_x, grid_y = np.meshgrid(np.linspace(-1.5, 1.7, 200), np.linspace(-0.5, 2.2, 200))
            ax.contour(grid_x, grid_y, valley(grid_x, grid_y), levels=np.geomspace(0.05, 40, 12),
                       cmap="viridis")
            norm = np.hypot(GX, GY) + 1e-12
            ax.quiver(X.ravel(), Y.ravel(), GX / norm, GY / norm, norm, cmap="magma", scale=30)
            ax.plot([1], [1], "r*", ms=12, label="minimum (1, 1)")
            ax.set_xlabel("x")
            ax.set_ylabel("y")
            ax.set_title("contours and gradient directions")
            ax.legend(fontsize=8)
            plt.close(fig)
            fig
        """),
        md("""
            Two facts to check in code. **Steepest ascent:** a small step of length $h$ along
            $\\nabla f / |\\nabla f|$ raises $f$ by about $h\\,|\\nabla f|$, more than any other
            direction. **Perpendicular to the contour:** a step along the perpendicular
            direction $(-f_y, f_x)/|\\nabla f|$ leaves $f$ unchanged to first order (the change
            is $O(h^2)$).
        """),
        code("""
            p = np.array([-0.5, 1.5])
            gx, gy = wb.grad(valley, argnums=(0, 1))(*p)
            g = np.array([gx, gy])
            up = g / np.linalg.norm(g)
            along = np.array([-gy, gx]) / np.linalg.norm(g)
            h = 1e-4

            rise = valley(*(p + h * up)) - valley(*p)
            assert np.isclose(rise / h, np.linalg.norm(g), rtol=1e-3)
            angles = np.linspace(0, 2 * np.pi, 360, endpoint=False)
            rises = [valley(*(p + h * np.array([np.cos(a), np.sin(a)]))) - valley(*p) for a in angles]
            assert max(rises) <= rise * (1 + 1e-6)

            flat = valley(*(p + h * along)) - valley(*p)
            assert abs(flat) < 1e-3 * abs(rise)
            print(f"|grad f| = {np.linalg.norm(g):.4f}; rise along the gradient / h = {rise / h:.4f}; "
                  f"change along the contour / h = {flat / h:.2e}")
        """),
        md("""
            ## The Hessian at the minimum

            At the minimum the gradient is zero, and the **Hessian** (the matrix of second
            derivatives) describes the bowl. Its eigenvectors are the bowl's principal
            directions and its eigenvalues the curvatures along them. By hand:
            $f_{xx} = 2 - 20(y - x^2) + 40x^2$, $f_{xy} = -20x$, $f_{yy} = 10$, so at $(1, 1)$
            the Hessian is $\\begin{pmatrix} 42 & -20 \\\\ -20 & 10 \\end{pmatrix}$.
        """),
        code("""
            H = wb.hessian(lambda p: valley(p[0], p[1]))(np.array([1.0, 1.0]))
            assert np.allclose(wb.grad(valley, argnums=(0, 1))(1.0, 1.0), 0.0)
            assert np.allclose(H, [[42, -20], [-20, 10]])
            curvatures, directions = np.linalg.eigh(H)
            print("curvatures:", curvatures.round(3))
            print("directions (columns):\\n", directions.round(3))
            print(f"condition number {curvatures[1] / curvatures[0]:.0f}: "
                  "the valley is narrow, which is why plain gradient descent zig-zags here")
            assert curvatures[0] > 0  # both positive: a minimum
        """),
        md("""
            Move the explorer's point to the minimum: its gradient arrow vanishes, and the two
            eigen-directions it draws are the columns above (the long axis of the valley is the
            direction of the small curvature).
        """),
        code("""
            valley_explorer.x0.value, valley_explorer.y0.value = 1.0, 1.0
            at_minimum = valley_explorer.values
            assert np.allclose(at_minimum["gradient"], 0.0)
            assert np.allclose(at_minimum["hessian"], H)
            assert np.allclose(at_minimum["eigenvalues"], curvatures)
            at_minimum["eigenvalues"]
        """),
        md("""
            ## Exercises
        """),
        exercise(1, """
            Where does $g(x) = x^3 - 3x$ have a horizontal tangent? Find both points with
            Newton's method on $g'$ (which needs $g''$: `wb.grad(wb.grad(g))`), starting from
            $x = 2$ and $x = -2$. Then open `wb.explore` on $g$ at one of them.
        """, """
            def g(x):
                return x ** 3 - 3 * x

            dg, d2g = wb.grad(g), wb.grad(wb.grad(g))
            roots = []
            for start in (2.0, -2.0):
                x = start
                for _ in range(20):
                    x = x - dg(x) / d2g(x)
                roots.append(float(x))
            assert np.allclose(sorted(roots), [-1.0, 1.0])
            print("horizontal tangents at", roots)
            wb.explore(g, x_range=(-2.5, 2.5), x0=roots[0])
        """),
        exercise(2, """
            The Taylor polynomial of order 2 of $\\cos$ at 0 is $1 - x^2/2$. Compute its three
            coefficients $f(0)$, $f'(0)$, $f''(0)/2$ with `wb.grad`, and measure the error of
            the approximation at $x = 0.1$: how does it compare with $x^4/24$?
        """, """
            c0 = np.cos(0.0)
            c1 = wb.grad(np.cos)(0.0)
            c2 = wb.grad(wb.grad(np.cos))(0.0) / 2
            assert np.allclose([c0, c1, c2], [1.0, 0.0, -0.5])
            x = 0.1
            error = np.cos(x) - (c0 + c1 * x + c2 * x ** 2)
            # cos is even, so the x^3 term is 0 and the error is about x^4/24
            assert np.isclose(error, x ** 4 / 24, rtol=1e-2)
            error, x ** 4 / 24
        """),
        exercise(3, """
            $s(x, y) = x y$ is a saddle. Compute its Hessian at the origin, its eigenvalues and
            eigen-directions. Which directions go up, which go down? Open the two-variable
            explorer on `"x*y"`.
        """, """
            H_saddle = wb.hessian(lambda p: p[0] * p[1])(np.zeros(2))
            curvatures, directions = np.linalg.eigh(H_saddle)
            assert np.allclose(curvatures, [-1, 1])
            # eigenvector of -1 is (1, -1)/sqrt2 (down), of +1 is (1, 1)/sqrt2 (up)
            assert np.isclose(abs(directions[:, 0] @ np.array([1, -1]) / np.sqrt(2)), 1)
            assert np.isclose(abs(directions[:, 1] @ np.array([1, 1]) / np.sqrt(2)), 1)
            wb.explore("x*y", x_range=(-2, 2))
        """),
    ])
