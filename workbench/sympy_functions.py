"""SymPy functions for the ops SymPy has no exact counterpart of, with torch's derivatives.

``ops.py`` builds these through ``_custom(name)``. Each class evaluates on numbers, knows its
derivative the way torch does (``relu'(0) = 0``: the derivative is ``Heaviside(x, 0)``; the
piecewise-constant ones have derivative 0), prints itself in LaTeX, and evaluates numerically:
``evalf`` through an equivalent SymPy expression, ``lambdify`` through its numpy ``_imp_``.

>>> import sympy
>>> x = sympy.Symbol("x", real=True)
>>> relu(x).diff(x)
Heaviside(x, 0)
>>> sigmoid(x).diff(x)
(1 - sigmoid(x))*sigmoid(x)
>>> relu(-2), sigmoid(0), float(softplus(0))
(0, 1/2, 0.6931471805599453)
>>> sympy.lambdify(x, relu(x) + sigmoid(x))(-1.0).round(6)
np.float64(0.268941)
>>> sympy.latex(relu(x))
'\\\\operatorname{relu}\\\\left(x\\\\right)'

The helpers that only appear in derivatives print in textbook notation, never by their names:
``step_tie(a, b)`` as the indicator ``1[a > b]`` with torch's 1/2 at a tie, ``in_range`` as
the indicator of the closed interval, ``stop_gradient(u)`` as ``sg[u]``.

>>> y = sympy.Symbol("y", real=True)
>>> str(step_tie(x, y)), str(in_range(x, -1, 1)), str(stop_gradient(x))
('(1[x > y] + 1[x = y]/2)', '1[-1 <= x <= 1]', 'sg[x]')
"""

from __future__ import annotations

import numpy as np
import sympy
from sympy import S

__all__ = ["relu", "sigmoid", "softplus", "stop_gradient", "step_tie", "in_range"]


class _Named(sympy.Function):
    """A function printed as ``\\operatorname{name}(args)`` and evaluated through a rewrite."""

    _latex_name = ""

    def _latex(self, printer, exp=None):
        args = ", ".join(printer._print(a) for a in self.args)
        name = self._latex_name or self.func.__name__.replace("_", r"\_")
        text = rf"\operatorname{{{name}}}\left({args}\right)"
        return rf"{text}^{{{exp}}}" if exp else text

    def _plain(self) -> sympy.Expr:
        """An equivalent expression in SymPy's own functions (used by evalf); each subclass
        defines it."""
        raise TypeError(f"{type(self).__name__} does not define _plain(), so it cannot be evaluated")

    def _eval_evalf(self, prec):
        return self._plain()._eval_evalf(prec)

    def _eval_is_real(self):
        return all(a.is_real for a in self.args) or None


class relu(_Named):
    """``max(x, 0)``; derivative ``Heaviside(x, 0)`` (0 at the kink, as torch)."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return x if x > 0 else S.Zero
        if x.is_extended_positive:
            return x
        if x.is_extended_nonpositive:
            return S.Zero
        return None

    def fdiff(self, argindex=1):
        return sympy.Heaviside(self.args[0], 0)

    @staticmethod
    def _imp_(x):
        return np.maximum(x, 0.0)  # nan propagates, as torch.relu

    def _plain(self):
        return sympy.Max(self.args[0], 0)

    def _eval_rewrite_as_Max(self, x, **kwargs):
        return sympy.Max(x, 0)

    def _eval_is_nonnegative(self):
        return True if self.args[0].is_real else None


class sigmoid(_Named):
    """The logistic function ``1 / (1 + exp(-x))``; derivative ``sigmoid(x) (1 - sigmoid(x))``."""

    nargs = 1
    _latex_name = r"\sigma"

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return S.Half
        return None

    def fdiff(self, argindex=1):
        return self * (1 - self)

    @staticmethod
    def _imp_(x):
        return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))

    def _plain(self):
        return 1 / (1 + sympy.exp(-self.args[0]))

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sympy.exp(-x))

    def _latex(self, printer, exp=None):
        text = rf"\sigma\left({printer._print(self.args[0])}\right)"
        return rf"{text}^{{{exp}}}" if exp else text


class softplus(_Named):
    """``log(1 + exp(x))``, and ``x`` itself above x = 20 (torch's threshold); so the derivative
    is ``sigmoid(x)``, and 1 above the threshold."""

    nargs = 1

    def fdiff(self, argindex=1):
        x = self.args[0]
        return sympy.Piecewise((S.One, x > 20), (sigmoid(x), True))

    @staticmethod
    def _imp_(x):
        x = np.asarray(x, dtype=float)
        return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))

    def _plain(self):
        x = self.args[0]
        if x.is_Number and x > 20:
            return x
        return sympy.log(1 + sympy.exp(x))

    def _eval_rewrite_as_log(self, x, **kwargs):
        return sympy.log(1 + sympy.exp(x))


class stop_gradient(_Named):
    """``x`` as a constant: its value is ``x``, its derivative 0 (``detach`` in torch)."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return x
        return None

    def fdiff(self, argindex=1):
        return S.Zero

    @staticmethod
    def _imp_(x):
        return x

    def _plain(self):
        return self.args[0]

    # Printed in the notation of ML papers, "sg[x]" (the stop-gradient operator): a student
    # sees a named constant, not an internal function name.
    def _latex(self, printer, exp=None):
        text = rf"\operatorname{{sg}}\left[{printer._print(self.args[0])}\right]"
        return rf"{text}^{{{exp}}}" if exp else text

    def _sympystr(self, printer):
        return f"sg[{printer._print(self.args[0])}]"


class step_tie(_Named):
    """``1`` where ``a > b``, ``1/2`` where ``a == b``, else ``0``: the derivative of ``max(a, b)``
    in ``a`` with torch's even split of ties. Piecewise constant, so its derivative is 0."""

    nargs = 2

    @classmethod
    def eval(cls, a, b):
        d = a - b
        if d.is_extended_positive:
            return S.One
        if d.is_extended_negative:
            return S.Zero
        if d.is_zero:
            return S.Half
        return None

    def fdiff(self, argindex=1):
        return S.Zero

    @staticmethod
    def _imp_(a, b):
        return np.where(np.greater(a, b), 1.0, np.where(np.equal(a, b), 0.5, 0.0))

    def _plain(self):
        return sympy.Heaviside(self.args[0] - self.args[1], S.Half)

    # Printed as the indicator it is, with torch's even split at a tie, never by name.
    def _latex(self, printer, exp=None):
        a, b = (printer._print(v) for v in self.args)
        text = (rf"\left(\mathbb{{1}}\left[{a} > {b}\right] + \tfrac{{1}}{{2}} \, "
                rf"\mathbb{{1}}\left[{a} = {b}\right]\right)")
        return rf"{text}^{{{exp}}}" if exp else text

    def _sympystr(self, printer):
        a, b = (printer._print(v) for v in self.args)
        return f"(1[{a} > {b}] + 1[{a} = {b}]/2)"


class in_range(_Named):
    """``1`` where ``lo <= x <= hi``, else ``0``: the derivative of ``clip(x, lo, hi)`` (as
    torch.clamp: 1 on the closed interval). Piecewise constant, so its derivative is 0."""

    nargs = 3

    @classmethod
    def eval(cls, x, lo, hi):
        if (x - lo).is_extended_nonnegative and (hi - x).is_extended_nonnegative:
            return S.One
        if (x - lo).is_extended_negative or (hi - x).is_extended_negative:
            return S.Zero
        return None

    def fdiff(self, argindex=1):
        return S.Zero

    @staticmethod
    def _imp_(x, lo, hi):
        return np.where(np.greater_equal(x, lo) & np.less_equal(x, hi), 1.0, 0.0)

    def _plain(self):
        x, lo, hi = self.args
        return sympy.Piecewise((S.One, sympy.And(x >= lo, x <= hi)), (S.Zero, True))

    def _latex(self, printer, exp=None):
        x, lo, hi = (printer._print(a) for a in self.args)
        text = rf"\mathbb{{1}}\left[{lo} \le {x} \le {hi}\right]"
        return rf"{text}^{{{exp}}}" if exp else text

    def _sympystr(self, printer):
        x, lo, hi = (printer._print(a) for a in self.args)
        return f"1[{lo} <= {x} <= {hi}]"
