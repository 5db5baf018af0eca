"""The whitelisting expression parser: what it accepts, what it refuses, what it computes."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import workbench as wb
from workbench.exprparse import FUNCTIONS, ExpressionError, parse


def test_variables_in_order_of_first_appearance():
    e = parse("y * sin(x) + y**2 - pi * e + z / 2")
    assert e.variables == ("y", "x", "z")


def test_numeric_function_matches_numpy():
    f = parse("exp(-x**2/2) * cos(3*y) + log1p(abs(x)) - atan2(y, x) + maximum(x, y)").function()
    x, y = 0.3, -1.2
    expected = (np.exp(-x**2 / 2) * np.cos(3 * y) + np.log1p(abs(x)) - np.arctan2(y, x)
                + max(x, y))
    assert float(f(x, y)) == pytest.approx(expected, rel=1e-15)


def test_sympy_form_is_built_without_sympify():
    x, y = sympy.symbols("x y")
    assert parse("2.5*x**3 - sqrt(y)/7 + pi").sympy() == (
        sympy.Rational(5, 2) * x**3 - sympy.sqrt(y) / 7 + sympy.pi)
    assert parse("log2(x) + sec(x)").sympy() == sympy.log(x, 2) + sympy.sec(x)


# Points inside each function's real domain (0.6 elsewhere).
OUTSIDE_UNIT = {"acosh", "arccosh", "asec", "acsc", "acoth"}


def test_every_whitelisted_function_has_matching_numeric_and_symbolic_forms():
    x = sympy.Symbol("x")
    for name, (arity, _, _) in FUNCTIONS.items():
        if arity != 1 or name == "sum":
            continue
        text = f"{name}(x)"
        value = 1.6 if name in OUTSIDE_UNIT else 0.6
        numeric = float(parse(text).function()(value))
        symbolic = complex(parse(text).sympy({"x": x}).subs(x, value).evalf())
        assert numeric == pytest.approx(symbolic.real, rel=1e-12), name


def test_parsed_functions_are_traceable():
    f = parse("x * sigmoid(y) + softplus(x)").function()
    gx, gy = wb.grad(f, argnums=(0, 1))(0.5, 1.5)
    s = 1 / (1 + np.exp(-1.5))
    assert float(gx) == pytest.approx(s + 1 / (1 + np.exp(-0.5)))
    assert float(gy) == pytest.approx(0.5 * s * (1 - s))


def test_explicit_variable_order_and_arity():
    f = parse("x - y").function(("y", "x"))
    assert float(f(1.0, 5.0)) == 4.0
    with pytest.raises(TypeError, match="takes 2 arguments"):
        f(1.0)
    with pytest.raises(ExpressionError, match="uses y"):
        parse("x - y").function(("x",))


HOSTILE = [
    ("__import__('os').system('ls')", "attribute access"),
    ("os.system('ls')", "attribute access"),
    ("x.real", "attribute access"),
    ("().__class__", "attribute access"),
    ("__builtins__", "names starting with '_'"),
    ("_x + 1", "names starting with '_'"),
    ("lambda: 0", "a lambda"),
    ("(lambda x: x)(1)", "calling anything but a function name"),
    ("[x for x in y]", "a list comprehension"),
    ("{x: 1}", "a dict"),
    ("x[0]", "subscripting"),
    ("'abc'", "the constant 'abc'"),
    ("b'abc'", "the constant b'abc'"),
    ("True + x", "the constant True"),
    ("f'{x}'", "an f-string"),
    ("x if y else z", "a conditional expression"),
    ("x == y", "a comparison"),
    ("x and y", "'and'/'or'"),
    ("not x", "the operator Not"),
    ("~x", "the operator Invert"),
    ("x @ y", "the operator MatMult"),
    ("x // y", "the operator FloorDiv"),
    ("x % y", "the operator Mod"),
    ("(x := 1)", "an assignment (:=)"),
    ("sin(x=1)", "keyword arguments"),
    ("sin(*x)", "takes 1 argument"),
    ("eval('1')", "unknown function 'eval'"),
    ("exec('x=1')", "unknown function 'exec'"),
    ("getattr(x, 'y')", "unknown function 'getattr'"),
    ("open('f')", "unknown function 'open'"),
    ("sin", "is a function; call it"),
    ("sin(x, y)", "sin takes 1 argument, got 2"),
    ("atan2(x)", "atan2 takes 2 arguments, got 1"),
    ("x +", "does not parse"),
    ("import os", "does not parse"),
    ("x; y", "does not parse"),
    ("x\x00", "null bytes"),
    ("-" * 500 + "x", "nested deeper"),
    ("x+" * 6000 + "x", "longer than"),
]


@pytest.mark.parametrize("text, message", HOSTILE)
def test_refused_with_a_clear_error(text, message):
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, wb.WorkbenchError)


def test_non_string_input():
    with pytest.raises(ExpressionError, match="must be a string"):
        parse(42)
