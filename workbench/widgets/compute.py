"""The numbers behind the explorer, compiled once per function and reused for every redraw.

:class:`Curves` evaluates f, f′, f″ of a one-variable function as ONE vectorised program
(``wb.vmap`` of f with its first and second ``wb.grad``): the grid and the point x0 are both
batches of that program, so moving x0 or changing the range runs cached code and never traces
again (unless the function's own control flow takes a new branch). :class:`Field` does the same
for f(x, y) and its gradient, and adds the Hessian at the chosen point.

Where f is not defined (log at x < 0) its value is nan, and so are its derivatives there.

>>> import numpy as np
>>> c = Curves(np.sin)
>>> y, dy, d2y = c.evaluate(np.array([0.0, np.pi / 2]))
>>> np.round(dy, 6).tolist(), np.round(d2y, 6).tolist()
([1.0, 0.0], [-0.0, -1.0])
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from .. import grad, hessian, vmap

# numpy's and vmap's warnings (log of a negative number, a second traced branch) are silenced:
# the explorer explains nan gaps in its own message line instead of a wall of text.


class Curves:
    """f, f′ and f″ of ``function`` (one variable), compiled once."""

    def __init__(self, function: Callable) -> None:
        self.function = function
        first = grad(function)
        second = grad(first)

        def value_and_derivatives(x):
            return function(x), first(x), second(x)

        self._batched = vmap(value_and_derivatives)

    def evaluate(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(f, f′, f″) at the points ``xs``; nan wherever f itself is not finite."""
        xs = np.asarray(xs, dtype=np.float64)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            values = [np.asarray(v, dtype=np.float64) for v in self._batched(xs)]
        y, dy, d2y = (np.broadcast_to(v, xs.shape).copy() for v in values)
        outside = ~np.isfinite(y)
        dy[outside] = np.nan
        d2y[outside] = np.nan
        return y, dy, d2y

    def at(self, x0: float) -> tuple[float, float, float]:
        """(f(x0), f′(x0), f″(x0)) from the same compiled program."""
        y, dy, d2y = self.evaluate(np.array([float(x0)]))
        return float(y[0]), float(dy[0]), float(d2y[0])


class Field:
    """f(x, y) and its gradient on grids, the Hessian at a point; compiled once."""

    def __init__(self, function: Callable) -> None:
        self.function = function
        gradient = grad(function, argnums=(0, 1))

        def value_and_gradient(x, y):
            gx, gy = gradient(x, y)
            return function(x, y), gx, gy

        self._batched = vmap(value_and_gradient)
        self._hessian = hessian(function, argnums=(0, 1))

    def evaluate(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray]:
        """(f, ∂f/∂x, ∂f/∂y) at the points (xs, ys) (same shapes); nan where f is not finite."""
        xs = np.asarray(xs, dtype=np.float64)
        ys = np.asarray(ys, dtype=np.float64)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            values = self._batched(xs.ravel(), ys.ravel())
        z, gx, gy = (np.broadcast_to(np.asarray(v, dtype=np.float64), xs.size)
                     .reshape(xs.shape).copy() for v in values)
        outside = ~np.isfinite(z)
        gx[outside] = np.nan
        gy[outside] = np.nan
        return z, gx, gy

    def at(self, x0: float, y0: float) -> tuple[float, np.ndarray, np.ndarray]:
        """(f, gradient (2,), Hessian (2, 2)) at (x0, y0)."""
        z, gx, gy = self.evaluate(np.array([float(x0)]), np.array([float(y0)]))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            h = self._hessian(float(x0), float(y0))
        matrix = np.array([[float(h[0][0]), float(h[0][1])], [float(h[1][0]), float(h[1][1])]])
        return float(z[0]), np.array([gx[0], gy[0]]), matrix
