"""wb.derivative on a corpus of textbook derivatives: every result correct, and (almost always)
no longer than the textbook's answer (SymPy ``count_ops``).

Each textbook answer is first checked against ``sympy.diff``; each of ours against the textbook
answer -- symbolically (structural equality, ``expand``, ``cancel``, then ``simplify`` of the
difference), or, where those cannot decide, numerically at random points of the domain.
"""

from __future__ import annotations

import random

import pytest
import sympy

import workbench as wb
from tests.corpus.textbook_derivatives import CORPUS, DOMAINS
from workbench.exprparse import parse

X = sympy.Symbol("x", real=True)  # the symbol wb.derivative names after the parameter x


def is_zero(difference) -> bool | None:
    """True if the difference simplifies to 0; None if SymPy cannot decide."""
    if difference == 0 or sympy.expand(difference) == 0:
        return True
    if sympy.cancel(sympy.together(difference)) == 0 or sympy.simplify(difference) == 0:
        return True
    return None


def numerically_equal(a, b, domain, points: int = 6) -> bool:
    rng = random.Random(1234)
    fa, fb = sympy.lambdify(X, a, "mpmath"), sympy.lambdify(X, b, "mpmath")
    for _ in range(points):
        v = rng.uniform(*domain)
        va, vb = complex(fa(v)), complex(fb(v))
        if abs(va - vb) > 1e-10 * max(1.0, abs(vb)):
            return False
    return True


def equal(a, b, f_text: str) -> bool:
    return bool(is_zero(a - b)) or numerically_equal(a, b, DOMAINS.get(f_text, (0.2, 0.9)))


@pytest.fixture(scope="module")
def results():
    """(f text, textbook expr, sympy.diff expr, our derivative) for the whole corpus, once."""
    rows = []
    # This measures how short the results are, not how fast: a machine busy with other work
    # must not cut the search short (the time budget itself is tested in test_derivative.py).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(wb.config, "simplify_seconds", 30.0)
        derivatives = [wb.derivative(parse(f_text).function()) for f_text, _ in CORPUS]
    for (f_text, d_text), ours in zip(CORPUS, derivatives):
        expression = parse(f_text)
        assert ours.symbols["x"] == X
        rows.append((f_text, parse(d_text).sympy({"x": X}),
                     sympy.diff(expression.sympy({"x": X}), X), ours.expr))
    return rows


def test_corpus_has_at_least_100_distinct_entries():
    assert len(CORPUS) >= 100
    assert len({f for f, _ in CORPUS}) == len(CORPUS)


def test_every_textbook_answer_is_right(results):
    wrong = [f for f, textbook, diffed, _ in results if not equal(diffed, textbook, f)]
    assert wrong == []


def test_every_derivative_is_right(results):
    wrong = [(f, ours) for f, textbook, _, ours in results if not equal(ours, textbook, f)]
    assert wrong == []


def test_derivatives_are_no_longer_than_the_textbook(results):
    longer = [(f, str(ours), str(textbook)) for f, textbook, _, ours in results
              if sympy.count_ops(ours) > sympy.count_ops(textbook)]
    share = 1 - len(longer) / len(results)
    print(f"\ntextbook corpus: {len(results)} derivatives, {100 * share:.1f} % no longer than "
          f"the textbook answer (count_ops); longer: {longer}")
    assert share >= 0.9, longer
