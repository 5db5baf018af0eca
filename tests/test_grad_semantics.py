"""wb.grad / wb.grad_and_value follow torch.func.grad's contract: argnums, pytrees, kwargs, has_aux,
errors, unused inputs and nesting.

Expected values are closed forms (d/dx x*y = y, ...); torch-specific comparisons live in
test_grad_torch.py.
"""

from __future__ import annotations

import math
from collections import OrderedDict, defaultdict, namedtuple

import numpy as np
import pytest

import workbench as wb

Params = namedtuple("Params", "w b")


def product(a, b):
    return a * b


# ----- argnums -----
def test_argnums_default_is_first_argument():
    assert float(wb.grad(product)(2.0, 3.0)) == 3.0


@pytest.mark.parametrize("argnums, expected", [(0, 3.0), (1, 2.0), (-1, 2.0), (-2, 3.0)])
def test_argnums_int_and_negative(argnums, expected):
    assert float(wb.grad(product, argnums=argnums)(2.0, 3.0)) == expected


def test_argnums_tuple_returns_tuple_in_the_given_order():
    grads = wb.grad(product, argnums=(1, 0))(2.0, 3.0)
    assert isinstance(grads, tuple) and len(grads) == 2
    assert (float(grads[0]), float(grads[1])) == (2.0, 3.0)


def test_argnums_one_element_tuple_returns_tuple():
    grads = wb.grad(product, argnums=(0,))(2.0, 3.0)
    assert isinstance(grads, tuple) and len(grads) == 1 and float(grads[0]) == 3.0


def test_argnums_negative_inside_tuple():
    grads = wb.grad(lambda a, b, c: a * b * c, argnums=(0, -1))(2.0, 3.0, 5.0)
    assert (float(grads[0]), float(grads[1])) == (15.0, 6.0)


@pytest.mark.parametrize("argnums", [2, -3, (0, 2), 7])
def test_argnums_out_of_range(argnums):
    with pytest.raises(wb.ArgnumsError, match="argnums") as info:
        wb.grad(product, argnums=argnums)(2.0, 3.0)
    assert isinstance(info.value, ValueError)
    assert "2 positional argument" in str(info.value)


@pytest.mark.parametrize("argnums", [(0, 0), (1, -1), (0, 1, 0)])
def test_argnums_duplicates(argnums):
    with pytest.raises(wb.ArgnumsError, match="unique"):
        wb.grad(product, argnums=argnums)(2.0, 3.0)


def test_argnums_empty_tuple_fails_when_the_transform_is_made():
    with pytest.raises(wb.ArgnumsError, match="non-empty"):
        wb.grad(product, argnums=())


@pytest.mark.parametrize("argnums", [1.0, "0", [0, 1], None, True, (0, 1.0), (0, "1")])
def test_argnums_non_int(argnums):
    with pytest.raises(wb.ArgnumsTypeError, match="argnums") as info:
        wb.grad(product, argnums=argnums)
    assert isinstance(info.value, TypeError)


def test_argnums_errors_for_grad_and_value_too():
    with pytest.raises(wb.ArgnumsTypeError):
        wb.grad_and_value(product, argnums=0.5)
    with pytest.raises(wb.ArgnumsError):
        wb.grad_and_value(product, argnums=5)(1.0, 2.0)


# ----- pytrees in and out -----
def test_dict_argument_gives_dict_gradient():
    def f(p):
        return p["a"] * p["b"] + p["c"] ** 2

    grads = wb.grad(f)({"a": 2.0, "b": 3.0, "c": 4.0})
    assert list(grads) == ["a", "b", "c"]
    assert {k: float(v) for k, v in grads.items()} == {"a": 3.0, "b": 2.0, "c": 8.0}


def test_list_and_tuple_arguments():
    g_list = wb.grad(lambda p: p[0] * p[1])([2.0, 5.0])
    g_tuple = wb.grad(lambda p: p[0] * p[1])((2.0, 5.0))
    assert isinstance(g_list, list) and [float(v) for v in g_list] == [5.0, 2.0]
    assert isinstance(g_tuple, tuple) and [float(v) for v in g_tuple] == [5.0, 2.0]


def test_nested_pytree_of_arrays_keeps_structure_and_shapes():
    params = {"layer": [np.array([1.0, 2.0]), (np.array([[3.0]]), 0.5)], "scale": 2.0}

    def f(p):
        w, (m, s) = p["layer"]
        return p["scale"] * (w ** 2).sum() + (m * s).sum()

    g = wb.grad(f)(params)
    assert set(g) == {"layer", "scale"}
    assert isinstance(g["layer"], list) and isinstance(g["layer"][1], tuple)
    np.testing.assert_allclose(g["layer"][0], 2.0 * 2.0 * np.array([1.0, 2.0]))
    assert np.shape(g["layer"][1][0]) == (1, 1)
    np.testing.assert_allclose(g["layer"][1][0], [[0.5]])
    assert float(g["layer"][1][1]) == 3.0
    assert float(g["scale"]) == 5.0


def test_namedtuple_argument_gives_namedtuple_gradient():
    g = wb.grad(lambda p: (p.w * p.b).sum())(Params(np.array([1.0, 2.0]), np.array([3.0, 4.0])))
    assert type(g) is Params
    np.testing.assert_allclose(g.w, [3.0, 4.0])
    np.testing.assert_allclose(g.b, [1.0, 2.0])


def test_ordered_dict_and_none_leaves():
    # None is an empty subtree (torch and JAX agree); the gradient keeps it as None
    g = wb.grad(lambda p: p["x"] * 3.0)({"x": 1.0, "unused": None})
    assert g["unused"] is None and float(g["x"]) == 3.0
    g = wb.grad(lambda p: p["x"] * p["y"])(OrderedDict(x=1.0, y=2.0))
    assert type(g) is OrderedDict and list(g) == ["x", "y"]
    assert (float(g["x"]), float(g["y"])) == (2.0, 1.0)
    g = wb.grad(lambda p: p["x"] * 3.0)(defaultdict(list, x=1.0))
    assert type(g) is defaultdict and g.default_factory is list and float(g["x"]) == 3.0


def test_pytree_argument_with_argnums_tuple():
    def f(p, x):
        return (p["w"] * x).sum()

    gp, gx = wb.grad(f, argnums=(0, 1))({"w": np.array([1.0, 2.0])}, np.array([3.0, 4.0]))
    np.testing.assert_allclose(gp["w"], [3.0, 4.0])
    np.testing.assert_allclose(gx, [1.0, 2.0])


def test_pytree_aux_output_structure():
    def f(x):
        return x ** 2, {"pair": (x, 2 * x), "list": [x ** 3], "label": "text"}

    g, aux = wb.grad(f, has_aux=True)(3.0)
    assert float(g) == 6.0
    assert [float(v) for v in aux["pair"]] == [3.0, 6.0]
    assert [float(v) for v in aux["list"]] == [27.0]
    assert aux["label"] == "text"


# ----- keyword arguments -----
def test_kwargs_are_passed_through_and_not_differentiated():
    def f(x, scale=1.0, *, power=2):
        return scale * x ** power

    assert float(wb.grad(f)(3.0, scale=2.0)) == 12.0
    assert float(wb.grad(f)(3.0, power=3)) == 27.0
    assert float(wb.grad(f)(3.0)) == 6.0


def test_kwarg_arrays_are_constants_and_new_values_are_used():
    f = wb.grad(lambda x, w=None: (w * x).sum())
    np.testing.assert_allclose(f(np.ones(2), w=np.array([1.0, 2.0])), [1.0, 2.0])
    np.testing.assert_allclose(f(np.ones(2), w=np.array([5.0, 7.0])), [5.0, 7.0])


def test_argnums_cannot_reach_keyword_arguments():
    with pytest.raises(wb.ArgnumsError, match="keyword"):
        wb.grad(lambda x, y=1.0: x * y, argnums=1)(2.0, y=3.0)


# ----- output and input errors -----
def test_non_scalar_output_is_an_error_naming_the_shape():
    with pytest.raises(wb.NonScalarOutputError, match=r"\(3,\)") as info:
        wb.grad(lambda x: x * 2)(np.ones(3))
    assert isinstance(info.value, ValueError)
    assert "sum()" in str(info.value)  # says what to do


@pytest.mark.parametrize("output", [lambda x: [x], lambda x: (x, x), lambda x: {"y": x}])
def test_container_output_without_has_aux_is_an_error(output):
    with pytest.raises(wb.OutputTypeError, match="has_aux"):
        wb.grad(output)(1.0)


def test_none_and_boolean_outputs_are_errors():
    with pytest.raises(wb.OutputTypeError):
        wb.grad(lambda x: None)(1.0)
    with pytest.raises(wb.OutputTypeError, match="boolean"):
        wb.grad(lambda x: x > 0)(1.0)


@pytest.mark.parametrize("bad, needle", [
    (3, "integer"), (True, "bool"), (np.arange(3), "integer dtype"), (np.int32(2), "integer"),
    (np.array([True, False]), "dtype bool"), ("text", "str"), (1 + 2j, "complex"),
    (np.array([1 + 2j]), "dtype complex128"), (np.array([1.0, None]), "dtype object"),
])
def test_integer_bool_and_other_inputs_are_errors(bad, needle):
    with pytest.raises(wb.InputTypeError, match=needle) as info:
        wb.grad(lambda x: (x * 2.0).sum())(bad)
    assert isinstance(info.value, TypeError)
    assert "argument 0" in str(info.value)


@pytest.mark.parametrize("transform", [wb.grad, wb.grad_and_value])
def test_non_callable_is_an_error_when_the_transform_is_made(transform):
    with pytest.raises(wb.InputTypeError, match="callable"):
        transform(3.0)


def test_integer_leaf_inside_a_pytree_is_named():
    with pytest.raises(wb.InputTypeError, match="leaf 1 of argument 0"):
        wb.grad(lambda p: p[0] * p[1])([1.0, 2])


def test_integer_argument_that_is_not_differentiated_is_fine():
    assert float(wb.grad(lambda x, n: x ** n)(2.0, 3)) == 12.0
    assert float(wb.grad(lambda x, n: x ** n)(2.0, 4)) == 32.0  # n is static: part of the key


# ----- has_aux -----
def test_has_aux_returns_aux_untouched_as_concrete_values():
    marker = object()

    def f(x):
        return (x ** 2).sum(), {"value": x * 10, "object": marker, "text": "t", "none": None}

    g, aux = wb.grad(f, has_aux=True)(np.array([1.0, 2.0]))
    np.testing.assert_allclose(g, [2.0, 4.0])
    assert isinstance(aux["value"], np.ndarray)
    np.testing.assert_allclose(aux["value"], [10.0, 20.0])
    assert aux["object"] is marker and aux["text"] == "t" and aux["none"] is None


@pytest.mark.parametrize("returned", [
    lambda x: x * 2, lambda x: (x,), lambda x: (x, 1, 2), lambda x: [x * 2], lambda x: None,
    lambda x: [x * 2, x],  # a list is refused, as by torch.func
])
def test_has_aux_requires_a_pair(returned):
    with pytest.raises(wb.HasAuxError, match=r"tuple \(output, aux\)") as info:
        wb.grad(returned, has_aux=True)(1.0)
    assert isinstance(info.value, TypeError)


def test_has_aux_with_argnums_tuple_and_grad_and_value():
    def f(a, b):
        return a * b, a + b

    (ga, gb), aux = wb.grad(f, argnums=(0, 1), has_aux=True)(2.0, 3.0)
    assert (float(ga), float(gb), float(aux)) == (3.0, 2.0, 5.0)
    g, (value, aux) = wb.grad_and_value(f, has_aux=True)(2.0, 3.0)
    assert (float(g), float(value), float(aux)) == (3.0, 6.0, 5.0)


def test_grad_and_value():
    g, v = wb.grad_and_value(lambda x: np.sin(x) * x)(0.5)
    assert math.isclose(float(v), math.sin(0.5) * 0.5)
    assert math.isclose(float(g), math.sin(0.5) + 0.5 * math.cos(0.5))


# ----- unused inputs -----
def test_unused_inputs_get_zeros_of_the_right_shape():
    g = wb.grad(lambda a, b: (a * 2.0).sum(), argnums=1)(np.ones(2), np.ones((2, 3)))
    assert g.shape == (2, 3) and not g.any()
    assert float(wb.grad(lambda x: 5.0)(1.0)) == 0.0
    g = wb.grad(lambda p: p["a"] * 2.0)({"a": 1.0, "b": np.ones(4)})
    np.testing.assert_array_equal(g["b"], np.zeros(4))


def test_output_that_is_a_plain_number():
    g, v = wb.grad_and_value(lambda x: 7.0)(np.ones(3))
    np.testing.assert_array_equal(g, np.zeros(3))
    assert float(v) == 7.0


# ----- nesting -----
def test_no_perturbation_confusion():
    # the inner grad differentiates w.r.t. y only: d/dy (x y) = x, then d/dx x = 1
    assert float(wb.grad(lambda x: wb.grad(lambda y: x * y)(x))(2.0)) == 1.0


def test_perturbation_confusion_classic_siskind_pearlmutter():
    # d/dx [ x * d/dy (x + y) ] at y = 1 is 1 (not 2)
    assert float(wb.grad(lambda x: x * wb.grad(lambda y: x + y)(1.0))(1.0)) == 1.0


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 6])
def test_nested_grad_of_sin_to_order_n(order):
    f = np.sin
    for _ in range(order):
        f = wb.grad(f)
    x = 0.7
    expected = [math.sin, math.cos, lambda t: -math.sin(t), lambda t: -math.cos(t)][order % 4](x)
    assert math.isclose(float(f(x)), expected, rel_tol=1e-12)


def test_third_derivative_of_polynomial_and_exp():
    f3 = wb.grad(wb.grad(wb.grad(lambda x: x ** 5 + np.exp(2 * x))))
    x = 0.3
    assert math.isclose(float(f3(x)), 60 * x ** 2 + 8 * math.exp(2 * x), rel_tol=1e-12)


def test_nested_grad_with_respect_to_closed_over_outer_variable():
    # h(x) = d/dy sin(x y) at y = x = x cos(x^2); h'(x) = cos(x^2) - 2 x^2 sin(x^2)
    def inner_grad_at_x(x):
        return wb.grad(lambda y: np.sin(x * y))(x)

    x = 0.8
    expected = math.cos(x * x) - 2 * x * x * math.sin(x * x)
    assert math.isclose(float(wb.grad(inner_grad_at_x)(x)), expected, rel_tol=1e-12)


def test_mixed_partial_with_argnums():
    # d2/dadb of a^2 b^3 = 6 a b^2
    def f(a, b):
        return a ** 2 * b ** 3

    mixed = wb.grad(wb.grad(f, argnums=0), argnums=1)(2.0, 3.0)
    assert float(mixed) == 6 * 2.0 * 9.0


def test_nested_grad_of_vector_function():
    # grad of sum(grad(sum x^3)) = grad(sum 3x^2) = 6x
    g = wb.grad(lambda x: wb.grad(lambda y: (y ** 3).sum())(x).sum())(np.array([1.0, 2.0]))
    np.testing.assert_allclose(g, [6.0, 12.0])


def test_nested_grad_and_value():
    def f(x):
        g, v = wb.grad_and_value(lambda y: y ** 3)(x)
        return g + v  # 3x^2 + x^3

    assert float(wb.grad(f)(2.0)) == 6 * 2.0 + 3 * 4.0


# ----- error classes -----
def test_every_error_class_is_exported_and_a_value_or_type_error():
    names = ["ArgnumsError", "ArgnumsTypeError", "NonScalarOutputError", "InputTypeError",
             "OutputTypeError", "HasAuxError", "UnsupportedOperationError",
             "TracedConversionError", "LeakedTracerError", "ShapeError", "BudgetExceededError"]
    for name in names:
        cls = getattr(wb, name)
        assert name in wb.__all__
        assert issubclass(cls, (ValueError, TypeError)) and issubclass(cls, wb.WorkbenchError)


def test_leaked_traced_value_is_an_error():
    leaked = []

    def f(x):
        leaked.append(x)
        return x * 2

    wb.grad(f)(1.0)
    with pytest.raises(wb.LeakedTracerError, match="traced value"):
        wb.grad(lambda y: y * leaked[0])(1.0)


def test_shape_mismatch_names_the_op_and_shapes():
    with pytest.raises(wb.ShapeError, match=r"\(2,\).*\(3,\)"):
        wb.grad(lambda x: (x + np.ones(3)).sum())(np.ones(2))
    with pytest.raises(wb.ShapeError, match="matmul"):
        wb.grad(lambda x: (x @ np.ones((3, 2))).sum())(np.ones(2))


# ----- outputs: types -----
def test_result_types_follow_the_input():
    assert isinstance(wb.grad(lambda x: x * x)(3.0), np.floating)
    g32 = wb.grad(lambda x: (x * x).sum())(np.array([1.0, 2.0], dtype=np.float32))
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, [2.0, 4.0])
    assert wb.grad(lambda x: x * x)(np.array(3.0)).shape == ()
