"""Bounded simplification: the shortest of several equal forms, within a time and size budget.

``sympy.simplify`` alone leaves textbook derivatives longer than they need to be (it keeps
``x**(sin(x) - 1)`` apart from ``x**sin(x)``, folds ``exp(x)*(sin(x) + cos(x))`` into
``sqrt(2)*exp(x)*sin(x + pi/4)``) and can make a result longer than its input. So
:func:`simplify` tries a set of rewrites, each of which returns an *equal* expression, and keeps
the shortest by SymPy's ``count_ops`` (ties: the shorter string). Besides SymPy's own
(``factor_terms``, ``together``, ``cancel``, ``factor``, ``simplify``...) there are our passes:

* :func:`drop_singular_masks` -- torch's masks of measure-zero points, e.g. the derivative of
  ``x**y`` is 0 where ``y == 0`` (where the formula ``y*x**(y-1)`` is itself 0 or undefined);
  displayed formulas drop them when the unmasked formula is 0 or undefined at the masked point.
  (Exported code keeps them: it is printed from the graph, not from this formula.)
* :func:`split_power_offsets` -- ``x**(a - 1)`` as ``x**a / x`` so ``x**a`` can be factored out;
* :func:`common_factors` -- pull the common factors out of a sum (after the splits above);
* :func:`expand_trig_shifts` -- ``sin(x + pi/4)`` back to ``sin(x)``, ``cos(x)`` terms.

Budgets (``wb.config``): an expression with more than ``simplify_max_ops`` operations is not
simplified at all; the whole search stops after ``simplify_seconds`` (the best form found so far
is kept; every candidate is equal to the input, so stopping early is never wrong).

>>> import sympy
>>> x = sympy.Symbol("x", real=True)
>>> simplify(sympy.diff(x ** sympy.sin(x), x)).expr
x**sin(x)*(log(x)*cos(x) + sin(x)/x)
>>> simplify(sympy.exp(x) * sympy.sin(x) + sympy.exp(x) * sympy.cos(x)).expr
(sin(x) + cos(x))*exp(x)
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy

from ..config import config


@dataclass
class Simplified:
    """The result of :func:`simplify`: the expression and how it was obtained."""

    expr: sympy.Expr
    original: sympy.Expr
    ops_before: int
    ops_after: int
    method: str  # the rewrite that gave the kept form ("as traced": none helped)
    note: str = ""  # one line when a budget stopped the search


class _OutOfTime(BaseException):
    """Past the deadline. A BaseException, so SymPy's broad ``except Exception`` blocks (its
    factorisation code has them) cannot swallow it."""


def within_deadline(seconds: float, body: Callable[[], None]) -> None:
    """Run ``body()``; raise ``_OutOfTime`` inside it after ``seconds``, in whichever thread
    runs it.

    A watchdog thread raises the exception asynchronously in the thread running ``body``
    (``PyThreadState_SetAsyncExc``: delivered between two bytecodes, like a signal handler's, but
    not only in the main thread, where SIGALRM is limited to -- a widget's or a server's worker
    thread ran unbounded). It fires again every 50 ms after the deadline, in case one firing
    lands where it is caught, until ``body`` ends. A function rather than a context manager:
    the watchdog is stopped by a ``finally`` of the very frame that ran ``body``, so a firing
    cannot land between the end of the body and the clean-up (as it can inside a context
    manager's ``__exit__``, which would leave the watchdog firing into unrelated code).
    """
    if seconds <= 0:
        body()
        return
    target = threading.get_ident()
    finished = threading.Event()
    lock = threading.Lock()  # held while firing, and while disarming: never both at once
    armed = [True]

    def watchdog() -> None:
        if finished.wait(seconds):
            return
        while True:
            with lock:
                if not armed[0]:
                    return
                fire = not _in_finaliser(target)
                if fire:
                    _raise_in_thread(target, _OutOfTime)
            if finished.wait(0.05 if fire else 0.002):
                return

    try:
        threading.Thread(target=watchdog, name="workbench-simplify-deadline", daemon=True).start()
        body()
    finally:
        while True:  # a firing during the clean-up itself must not skip it
            try:
                with lock:
                    armed[0] = False
                    _raise_in_thread(target, None)  # drop a firing not yet delivered
                finished.set()
                break
            except _OutOfTime:
                continue


_WEAKREF_MODULES = ("weakref.py", "_weakrefset.py")


def _in_finaliser(thread_id: int) -> bool:
    """Whether the thread runs a garbage-collector callback (jax registers one), a ``__del__``
    or a ``weakref.finalize`` / weak-container callback (workbench's version caches use one):
    an exception raised there is printed as "ignored" and lost, so wait and fire later."""
    frame = sys._current_frames().get(thread_id)
    callbacks = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    while frame is not None:
        code = frame.f_code
        if code in callbacks or code.co_name == "__del__" or \
                os.path.basename(code.co_filename) in _WEAKREF_MODULES:
            return True
        frame = frame.f_back
    return False


def _raise_in_thread(thread_id: int, exception: type[BaseException] | None) -> None:
    """Make ``exception`` be raised in thread ``thread_id`` (None: cancel a pending one)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception) if exception else None)


def size(expr) -> tuple[int, int]:
    """The measure minimised: SymPy's ``count_ops``, then the length of the printed string."""
    return sympy.count_ops(expr), len(str(expr))


# ----- our rewriting passes (each returns an expression equal to its input) -----
def _undefined_or_zero(expr) -> bool:
    """True if ``expr`` is 0, or not a finite number (nan, zoo, oo) -- undefined there."""
    if expr is sympy.nan or expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return True
    return expr.is_zero is True


def drop_singular_masks(expr):
    """``Piecewise((0, Eq(a, 0) & ...), (E, True))`` -> ``E`` where ``E`` is 0 or undefined
    whenever the condition holds (torch's pow masks at 0**0 and log(0)).
    """

    def rewrite(pw):
        if len(pw.args) != 2 or pw.args[0].expr != 0 or pw.args[1].cond is not sympy.true:
            return pw
        cond, other = pw.args[0].cond, pw.args[1].expr
        parts = cond.args if isinstance(cond, sympy.And) else (cond,)
        for eq in parts:
            if isinstance(eq, sympy.Eq) and eq.rhs == 0 and eq.lhs.free_symbols:
                # E with the masked quantity set to 0 (whatever the other symbols are)
                dummy = sympy.Dummy("u")
                at = other.subs(eq.lhs, dummy).subs(dummy, 0)
                if _undefined_or_zero(at):
                    return other
        return pw

    return expr.replace(lambda e: isinstance(e, sympy.Piecewise), rewrite)


def split_power_offsets(expr):
    """``b**(a + k)`` with a rational ``k`` and a non-constant ``a`` -> ``b**a * b**k``."""

    def rewrite(p):
        base, exponent = p.args
        if not exponent.is_Add:
            return p
        k, rest = exponent.as_coeff_Add()
        if k == 0 or not k.is_Rational or rest.is_number:
            return p
        return sympy.Mul(sympy.Pow(base, rest), sympy.Pow(base, k))

    return expr.replace(lambda e: e.is_Pow, rewrite)


def common_factors(expr):
    """Pull factors common to every term of each sum out (``factor_terms``), after
    :func:`split_power_offsets`."""
    return sympy.factor_terms(split_power_offsets(expr))


def expand_trig_shifts(expr):
    """``sin(x + pi/4)``-style shifted trig functions expanded into ``sin(x)`` and ``cos(x)``."""
    shifted = [f for f in expr.atoms(sympy.sin, sympy.cos)
               if f.args[0].is_Add and any(t.has(sympy.pi) for t in f.args[0].args)]
    if not shifted:
        return expr
    return sympy.factor_terms(sympy.expand(
        expr.xreplace({f: sympy.expand_trig(f) for f in shifted})))


def reciprocal_trig(expr):
    """Textbook trig names: ``sin/cos -> tan``, ``cos/sin -> cot``, ``1/cos -> sec``,
    ``1/sin -> csc``, ``1 + tan**2 -> sec**2``, ``1 - tanh**2 -> sech**2``, and the same for the
    hyperbolic functions (``sinh/cosh -> tanh``, ``1/cosh -> sech`` ...), within each product."""
    if expr.has(sympy.tan, sympy.tanh):
        expr = expr.replace(lambda e: e.is_Add and len(e.args) == 2, _pythagorean_sum)
    for family in _FAMILIES:
        sin, cos, tan, cot = family[:4]
        if expr.has(sin, cos):
            expr = expr.replace(lambda e: e.is_Mul, lambda e, f=family: _reciprocal_product(e, f))
            expr = expr.replace(
                lambda e, s=sin, c=cos: e.is_Pow and isinstance(e.base, (s, c))
                and e.exp.is_negative,
                lambda e, f=family: _reciprocal_product(e, f))
        if expr.has(tan):
            expr = expr.replace(
                lambda e, t=tan: e.is_Pow and isinstance(e.base, t) and e.exp.is_negative,
                lambda e, c=cot: c(e.base.args[0]) ** -e.exp)
    return expr


def _pythagorean_sum(add):
    """``1 + tan(u)**2 -> sec(u)**2`` and ``1 - tanh(u)**2 -> sech(u)**2`` (exact identities)."""
    a, b = add.args
    if b == 1:
        a, b = b, a
    if a != 1:
        return add
    if b.is_Pow and b.exp == 2 and isinstance(b.base, sympy.tan):
        return sympy.sec(b.base.args[0]) ** 2
    coeff, rest = b.as_coeff_Mul()
    if coeff == -1 and rest.is_Pow and rest.exp == 2 and isinstance(rest.base, sympy.tanh):
        return sympy.sech(rest.base.args[0]) ** 2
    return add


# (sin, cos, tan, cot, csc, sec) of the circular and of the hyperbolic functions
_FAMILIES = [(sympy.sin, sympy.cos, sympy.tan, sympy.cot, sympy.csc, sympy.sec),
             (sympy.sinh, sympy.cosh, sympy.tanh, sympy.coth, sympy.csch, sympy.sech)]


def sign_products(expr):
    """``u * sign(u)`` -> ``Abs(u)`` (equal for every real ``u``, 0 included)."""
    if not expr.has(sympy.sign):
        return expr

    def rewrite(product):
        factors = list(sympy.Mul.make_args(product))
        for f in factors:
            if isinstance(f, sympy.sign) and f.args[0] in factors and f.args[0].is_real:
                factors.remove(f)
                factors.remove(f.args[0])
                return sympy.Mul(sympy.Abs(f.args[0]), *factors)
        return product

    return expr.replace(lambda e: e.is_Mul, rewrite)


def _reciprocal_product(product, family):
    """One product's powers of sin and cos (or sinh and cosh) as tan/cot, then csc/sec."""
    sin, cos, tan, cot, csc, sec = family
    powers: dict = {}
    rest = []
    for factor in sympy.Mul.make_args(product):
        base, exponent = factor.as_base_exp()
        if isinstance(base, (sin, cos)) and exponent.is_Integer:
            key = (type(base), base.args[0])
            powers[key] = powers.get(key, 0) + int(exponent)
        else:
            rest.append(factor)
    if not powers:
        return product
    out = []
    for arg in {a for _, a in powers}:
        s, c = powers.get((sin, arg), 0), powers.get((cos, arg), 0)
        if s > 0 and c < 0:  # sin**s / cos**|c|: tan**k
            k = min(s, -c)
            out.append(tan(arg) ** k)
            s, c = s - k, c + k
        elif c > 0 and s < 0:  # cos**c / sin**|s|: cot**k
            k = min(c, -s)
            out.append(cot(arg) ** k)
            s, c = s + k, c - k
        out.append(sin(arg) ** s if s >= 0 else csc(arg) ** -s)
        out.append(cos(arg) ** c if c >= 0 else sec(arg) ** -c)
    return sympy.Mul(*rest, *out)


def _flatten_piecewise_derivatives(expr):
    return sympy.piecewise_fold(expr) if expr.has(sympy.Piecewise) else expr


# Candidate rewrites, cheap first. Each is applied to the input and to the best form so far.
_PASSES: list[tuple[str, Callable]] = [
    ("factor_terms", sympy.factor_terms),
    ("sign products", sign_products),
    ("common factors", common_factors),
    ("together", sympy.together),
    ("cancel", sympy.cancel),
    ("factor", sympy.factor),
    ("powsimp", sympy.powsimp),
    ("trigsimp", sympy.trigsimp),
    ("shifted trig", expand_trig_shifts),
    ("reciprocal trig", reciprocal_trig),
    ("expand", sympy.expand),
    ("simplify", sympy.simplify),
]
_EXPENSIVE = frozenset({"simplify", "factor"})  # tried on the input only, not again on the best


# Applied after each candidate: sums often shrink only once factors are pulled out, and the
# textbook names of trig quotients apply only to the final products.
_FOLLOW_UPS: list[tuple[str, Callable | None]] = [
    ("", None),
    (" + common factors", common_factors),
    (" + reciprocal trig", reciprocal_trig),
    (" + common factors + reciprocal trig", lambda e: reciprocal_trig(common_factors(e))),
]


def _attempt(rewrite: Callable, expr: Any) -> Any:
    """``rewrite(expr)``, one optional pass, or None where SymPy fails inside it (or ``expr`` is
    None): the other passes go on. Seen: mpmath's PSLQ asserting inside ``sympy.simplify`` at
    a random test point. The deadline's ``_OutOfTime`` is a BaseException and passes."""
    if expr is None:
        return None
    try:
        return rewrite(expr)
    except (Exception, RecursionError):  # noqa: BLE001 - any failure of an optional pass
        return None


def simplify(expr, max_ops: int | None = None, seconds: float | None = None) -> Simplified:
    """The shortest equal form of ``expr`` found within the budgets (see the module docstring)."""
    max_ops = config.simplify_max_ops if max_ops is None else max_ops
    seconds = config.simplify_seconds if seconds is None else seconds
    expr = sympy.sympify(expr)  # our own SymPy objects, never user text
    before = sympy.count_ops(expr)
    if before > max_ops:
        return Simplified(expr, expr, before, before, "as traced",
                          f"not simplified: {before} operations is above the budget of "
                          f"{max_ops} (wb.config.simplify_max_ops)")
    if not isinstance(expr, sympy.Basic) or expr.is_Atom:
        return Simplified(expr, expr, before, before, "as traced")
    best, best_size, method = expr, size(expr), "as traced"
    note = ""
    start = time.perf_counter()

    def search() -> None:  # the passes, under the deadline
        nonlocal best, best_size, method
        unmasked = drop_singular_masks(expr)
        folded = _flatten_piecewise_derivatives(unmasked)
        if size(folded) <= size(unmasked):
            # only when no longer: folding indicator sums (ties of max) multiplies cases
            unmasked = folded
        if unmasked != expr:
            best, best_size, method = unmasked, size(unmasked), "singular masks dropped"
        base = best
        tried: set = set()  # candidates already followed up (passes often agree)
        for name, rewrite in _PASSES:
            for source in {base} if name in _EXPENSIVE else {base, best}:
                candidate = _attempt(drop_singular_masks, _attempt(rewrite, source))
                if candidate is None or candidate in tried:
                    continue
                tried.add(candidate)
                for extra_name, extra in _FOLLOW_UPS:
                    form = candidate if extra is None else _attempt(extra, candidate)
                    if form is None:
                        continue
                    form_size = size(form)
                    if form_size < best_size:
                        best, best_size, method = form, form_size, name + extra_name

    try:
        within_deadline(seconds, search)
    except _OutOfTime:
        note = (f"simplification stopped after {time.perf_counter() - start:.1f} s "
                "(wb.config.simplify_seconds); showing the shortest form found by then")
    return Simplified(best, expr, before, best_size[0], method, note)


# ----- the textbook form shown beside the simplified one -----
#: A textbook form is offered only when it is at most this many times as long (count_ops) as
#: the simplified form, plus two operations.
TEXTBOOK_RATIO = 2.0


def fraction_depth(expr) -> int:
    """How deeply fractions nest in ``expr``: 0 for ``x + 1``, 1 for ``sin(x)/x``, 2 for
    ``(cos(x) - sin(x)/x)/x`` (a fraction inside a fraction).

    >>> x = sympy.Symbol("x")
    >>> [fraction_depth(e) for e in (x + 1, sympy.sin(x) / x, (sympy.cos(x) - sympy.sin(x) / x) / x)]
    [0, 1, 2]
    """
    if not isinstance(expr, sympy.Basic) or expr.is_Atom:
        return 0
    if expr.is_Mul or expr.is_Pow:
        # the fraction as written: factors with a negative exponent make the denominator
        above, below = [], []
        for factor in sympy.Mul.make_args(expr):
            base, exponent = factor.as_base_exp()
            if exponent.is_negative:
                below.append(sympy.Pow(base, -exponent))
            else:
                above.append(factor)
        if below:
            return 1 + max(fraction_depth(f) for f in above + below)
    return max((fraction_depth(a) for a in expr.args), default=0)


def _apart(expr):
    """Partial fractions of a rational function of one variable (else ``expr`` unchanged)."""
    symbols = expr.free_symbols
    if len(symbols) == 1 and expr.is_rational_function(*symbols):
        return sympy.apart(expr, *symbols)
    return expr


# distribute over sums (leaving powers and functions alone), expand fully, partial fractions
_TEXTBOOK_REWRITES: list[Callable] = [sympy.expand_mul, sympy.expand, _apart]


def textbook_form(expr, seconds: float | None = None):
    """A sum of simple terms equal to ``expr``, when ``expr`` nests fractions and such a sum is
    not much longer; else None. The rule, in one line: offered when the sum has a lower
    :func:`fraction_depth` than ``expr`` (which has 2 or more) and at most
    :data:`TEXTBOOK_RATIO` times its ``count_ops`` (+2). Bounded by ``seconds`` (default
    ``wb.config.simplify_seconds``) and ``wb.config.simplify_max_ops``.

    >>> x = sympy.Symbol("x")
    >>> textbook_form((sympy.cos(x) - sympy.sin(x) / x) / x)
    cos(x)/x - sin(x)/x**2
    >>> textbook_form(sympy.sin(x) / x) is None  # no nested fraction: nothing to offer
    True
    """
    seconds = config.simplify_seconds if seconds is None else seconds
    if not isinstance(expr, sympy.Basic) or expr.is_Atom or seconds <= 0:
        return None
    depth = fraction_depth(expr)
    ops = sympy.count_ops(expr)
    if depth < 2 or ops > config.simplify_max_ops:
        return None
    best, best_size = None, None

    def search() -> None:  # the rewrites, under the deadline
        nonlocal best, best_size
        for rewrite in _TEXTBOOK_REWRITES:
            candidate = _attempt(rewrite, expr)
            if candidate is None:
                continue  # SymPy could not rewrite this one: the other candidates stand
            candidate_size = size(candidate)
            if (candidate != expr and fraction_depth(candidate) < depth
                    and candidate_size[0] <= TEXTBOOK_RATIO * ops + 2
                    and (best_size is None or candidate_size < best_size)):
                best, best_size = candidate, candidate_size

    try:
        within_deadline(seconds, search)
    except _OutOfTime:
        pass  # the best found so far (or none) stands: every candidate equals expr
    return best
