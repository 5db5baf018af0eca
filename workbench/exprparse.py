"""A whitelisting parser for expression strings (the command line, the textbook corpus).

Text is parsed with Python's :mod:`ast` and every node is checked against a whitelist: numbers,
names, ``+ - * / **``, unary minus and plus, and calls of the functions in :data:`FUNCTIONS`
(by plain name, positional arguments only). Anything else -- attribute access, subscripts,
lambdas, comprehensions, keyword arguments, strings, ``__import__`` -- is refused with an
:class:`ExpressionError` naming what was found. Nothing is ever passed to ``eval``, ``exec`` or
``sympify``: the checked tree is interpreted directly, into a numpy/workbench function or into
a SymPy expression.

The functions are spelt as numpy spells them (``arcsin``, ``absolute``, ``maximum``,
``heaviside(x, h)``) or as SymPy does (``asin``, ``Abs``, ``Max``/``Min`` of two or more
arguments, ``Heaviside``, ``log(x, b)``, ``sec csc cot asec acsc acot sech csch coth asech acsch
acoth``, written with the ops that exist: ``sec(x) = 1/cos(x)``, ``asec(x) = arccos(1/x)``).
Written rationals stay exact in the SymPy form (``x**(1/3)``); the function computes them in
floating point. :func:`from_sympy` reads a SymPy expression the same way: by walking it with a
whitelist of SymPy classes into the same checked tree.

>>> e = parse("sin(x) * y**2 + pi")
>>> e.variables
('x', 'y')
>>> f = e.function()
>>> round(float(f(0.5, 2.0)), 6)
5.059295
>>> e.sympy()
y**2*sin(x) + pi
>>> parse("Max(x, 0) + log(x, 2) * x**(1/3)").sympy()
x**(1/3)*log(x)/log(2) + Max(0, x)
>>> parse("__import__('os').system('ls')")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
workbench.exprparse.ExpressionError: expression refused: attribute access ('.system') is not allowed; ...
"""

from __future__ import annotations

import ast
import inspect
import keyword
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import WorkbenchError

#: Longest expression accepted (keeps parsing and interpretation trivially bounded).
MAX_LENGTH = 10_000
#: Deepest nesting accepted (the interpreter recurses over the tree).
MAX_DEPTH = 100


class ExpressionError(WorkbenchError, ValueError):
    """An expression string uses something the whitelist does not allow, or does not parse."""


def _np_fn(name: str) -> Callable:
    return getattr(np, name)


def _wb_fn(name: str) -> Callable:
    def call(*args):
        from . import functions

        return getattr(functions, name)(*args)

    call.__name__ = name
    return call


def _sym(name: str, *, custom: bool = False) -> Callable[[], Callable]:
    def get():
        if custom:
            from . import sympy_functions

            return getattr(sympy_functions, name)
        import sympy

        return getattr(sympy, name)

    return get


def _sym_log(base: int) -> Callable[[], Callable]:
    def get():
        import sympy

        return lambda x: sympy.log(x, base)

    return get


def _sym_lambda(build: Callable) -> Callable[[], Callable]:
    def get():
        import sympy

        return lambda *a: build(sympy, *a)

    return get


def _heaviside(x, at_zero=0.5):
    """1 where x > 0, ``at_zero`` where x == 0 (SymPy's default 1/2), else 0; piecewise
    constant, so its derivative is 0 everywhere (torch refuses to differentiate
    ``torch.heaviside``; JAX's ``jnp.heaviside`` gives 0, as here)."""
    from . import functions

    return functions.where(x > 0, 1.0, functions.where(x == 0, at_zero, 0.0))


def _extremum(pair: str, reduce: str) -> Callable:
    """Max/Min of two or more arguments: the pairwise op for two (torch.maximum's even split of
    a tie), the reduction over all of them for more (ties split evenly among all the
    maximal entries, as torch's ``amax``)."""

    def call(*args):
        if len(args) == 2:
            return getattr(np, pair)(*args)
        return getattr(np, reduce)(np.stack(args))

    call.__name__ = pair
    return call


def _reciprocal(name: str) -> Callable:
    """``1 / f(x)`` for f one of numpy's functions (sec = 1/cos, ...)."""
    f = getattr(np, name)

    def call(x):
        return 1.0 / f(x)

    return call


def _of_reciprocal(name: str) -> Callable:
    """``f(1 / x)`` for f one of numpy's functions (asec(x) = arccos(1/x), ...)."""
    f = getattr(np, name)

    def call(x):
        return f(1.0 / x)

    return call


def _log(x, base=None):
    return np.log(x) if base is None else np.log(x) / np.log(base)


#: How many arguments a function takes: an exact count, or (fewest, most) with most None for
#: any number.
Arity = int | tuple[int, int | None]

# name -> (arity, numeric function, SymPy function getter). SymPy's spellings (Abs, Max, Min,
# Heaviside, log(x, b), sec ... acoth) and numpy's (arcsin, absolute, maximum, heaviside ...)
# both work; functions SymPy has and the op table has not are written with ops that exist
# (sec = 1/cos, asec(x) = arccos(1/x), ...).
FUNCTIONS: dict[str, tuple[Arity, Callable, Callable[[], Callable]]] = {
    "sin": (1, _np_fn("sin"), _sym("sin")),
    "cos": (1, _np_fn("cos"), _sym("cos")),
    "tan": (1, _np_fn("tan"), _sym("tan")),
    "sec": (1, _reciprocal("cos"), _sym("sec")),
    "csc": (1, _reciprocal("sin"), _sym("csc")),
    "cot": (1, _reciprocal("tan"), _sym("cot")),
    "asin": (1, _np_fn("arcsin"), _sym("asin")),
    "acos": (1, _np_fn("arccos"), _sym("acos")),
    "atan": (1, _np_fn("arctan"), _sym("atan")),
    "asec": (1, _of_reciprocal("arccos"), _sym("asec")),
    "acsc": (1, _of_reciprocal("arcsin"), _sym("acsc")),
    "acot": (1, _of_reciprocal("arctan"), _sym("acot")),
    "arcsin": (1, _np_fn("arcsin"), _sym("asin")),
    "arccos": (1, _np_fn("arccos"), _sym("acos")),
    "arctan": (1, _np_fn("arctan"), _sym("atan")),
    "sinh": (1, _np_fn("sinh"), _sym("sinh")),
    "cosh": (1, _np_fn("cosh"), _sym("cosh")),
    "tanh": (1, _np_fn("tanh"), _sym("tanh")),
    "sech": (1, _reciprocal("cosh"), _sym("sech")),
    "csch": (1, _reciprocal("sinh"), _sym("csch")),
    "coth": (1, _reciprocal("tanh"), _sym("coth")),
    "asinh": (1, _np_fn("arcsinh"), _sym("asinh")),
    "acosh": (1, _np_fn("arccosh"), _sym("acosh")),
    "atanh": (1, _np_fn("arctanh"), _sym("atanh")),
    "asech": (1, _of_reciprocal("arccosh"), _sym("asech")),
    "acsch": (1, _of_reciprocal("arcsinh"), _sym("acsch")),
    "acoth": (1, _of_reciprocal("arctanh"), _sym("acoth")),
    "arcsinh": (1, _np_fn("arcsinh"), _sym("asinh")),
    "arccosh": (1, _np_fn("arccosh"), _sym("acosh")),
    "arctanh": (1, _np_fn("arctanh"), _sym("atanh")),
    "exp": (1, _np_fn("exp"), _sym("exp")),
    "expm1": (1, _np_fn("expm1"), _sym_lambda(lambda s, x: s.exp(x) - 1)),
    "log": ((1, 2), _log, _sym("log")),
    "log1p": (1, _np_fn("log1p"), _sym_lambda(lambda s, x: s.log(1 + x))),
    "log2": (1, _np_fn("log2"), _sym_log(2)),
    "log10": (1, _np_fn("log10"), _sym_log(10)),
    "sqrt": (1, _np_fn("sqrt"), _sym("sqrt")),
    "abs": (1, _np_fn("abs"), _sym("Abs")),
    "Abs": (1, _np_fn("abs"), _sym("Abs")),
    "absolute": (1, _np_fn("abs"), _sym("Abs")),
    "sign": (1, _np_fn("sign"), _sym("sign")),
    "floor": (1, _np_fn("floor"), _sym("floor")),
    "ceiling": (1, _np_fn("ceil"), _sym("ceiling")),
    "ceil": (1, _np_fn("ceil"), _sym("ceiling")),
    "Heaviside": ((1, 2), _heaviside, _sym("Heaviside")),
    "heaviside": (2, _heaviside, _sym("Heaviside")),
    "relu": (1, _wb_fn("relu"), _sym("relu", custom=True)),
    "sigmoid": (1, _wb_fn("sigmoid"), _sym("sigmoid", custom=True)),
    "softplus": (1, _wb_fn("softplus"), _sym("softplus", custom=True)),
    "atan2": (2, _np_fn("arctan2"), _sym("atan2")),
    "arctan2": (2, _np_fn("arctan2"), _sym("atan2")),
    "maximum": (2, _np_fn("maximum"), _sym("Max")),
    "minimum": (2, _np_fn("minimum"), _sym("Min")),
    "Max": ((2, None), _extremum("maximum", "max"), _sym("Max")),
    "Min": ((2, None), _extremum("minimum", "min"), _sym("Min")),
    "sum": (1, _wb_fn("sum"), _sym_lambda(lambda s, x: x)),
}

CONSTANTS: dict[str, tuple[float, Callable[[], Any]]] = {
    "pi": (float(np.pi), lambda: __import__("sympy").pi),
    "e": (float(np.e), lambda: __import__("sympy").E),
    "E": (float(np.e), lambda: __import__("sympy").E),  # SymPy's spelling
}

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_ALLOWED_TEXT = ("allowed: numbers, variable names, + - * / **, and calls of sin, cos, exp, ...")


def _refuse(what: str) -> ExpressionError:
    return ExpressionError(f"expression refused: {what} is not allowed; {_ALLOWED_TEXT}")


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"attribute access ('.{node.attr}')"
    if isinstance(node, ast.Subscript):
        return "subscripting ([...])"
    if isinstance(node, ast.Lambda):
        return "a lambda"
    if isinstance(node, ast.Constant):
        return f"the constant {node.value!r}"
    return _SYNTAX_NAMES.get(type(node).__name__, f"{type(node).__name__} syntax")


_SYNTAX_NAMES = {
    "ListComp": "a list comprehension", "SetComp": "a set comprehension",
    "DictComp": "a dict comprehension", "GeneratorExp": "a generator expression",
    "List": "a list", "Tuple": "a tuple", "Set": "a set", "Dict": "a dict",
    "IfExp": "a conditional expression (a if c else b)", "Compare": "a comparison",
    "BoolOp": "'and'/'or'", "JoinedStr": "an f-string", "NamedExpr": "an assignment (:=)",
    "Await": "await", "Yield": "yield", "YieldFrom": "yield", "Starred": "unpacking (*)",
}


@dataclass(frozen=True)
class Expression:
    """A checked expression: its tree and its free variables in order of first appearance."""

    text: str
    tree: ast.expr
    variables: tuple[str, ...]

    def function(self, variables: tuple[str, ...] | None = None) -> Callable:
        """A Python function of the variables (numpy/workbench calls, so it can be traced)."""
        order = variables or self.variables
        _check_variables(self, order)
        tree = self.tree

        def fn(*args):
            if len(args) != len(order):
                raise TypeError(f"expression {self.text!r} takes {len(order)} arguments "
                                f"({', '.join(order)}), got {len(args)}")
            return _numeric(tree, dict(zip(order, args)))

        fn.__name__ = "expression"
        fn.__qualname__ = "expression"
        fn.__doc__ = f"The expression ``{self.text}``."
        fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(v, inspect.Parameter.POSITIONAL_OR_KEYWORD) for v in order])
        return fn

    def sympy(self, symbols: dict[str, Any] | None = None) -> Any:
        """The SymPy expression (variables become the given symbols, else plain ``Symbol``)."""
        import sympy

        table = dict(symbols or {})
        for v in self.variables:
            table.setdefault(v, sympy.Symbol(v))
        return _symbolic(self.tree, table)


def parse(text: str) -> Expression:
    """Check ``text`` against the whitelist and return the :class:`Expression`."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression refused: longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(f"expression {text!r} does not parse: {exc.msg} (write Python "
                              "syntax, e.g. 'x**2 * sin(y)')") from None
    except (ValueError, RecursionError, MemoryError):  # null bytes, absurd nesting
        raise ExpressionError("expression refused: it cannot be parsed safely (null bytes or "
                              f"nesting deeper than {MAX_DEPTH} levels)") from None
    variables: list[str] = []
    _check(tree, variables, 0)
    return Expression(text, tree, tuple(variables))


def _check(node: ast.AST, variables: list[str], depth: int) -> None:
    """Refuse anything outside the whitelist (iterating over the tree's own structure)."""
    if depth > MAX_DEPTH:
        raise ExpressionError(f"expression refused: nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise _refuse(_describe(node))
    elif isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise _refuse(f"the name {node.id!r} (names starting with '_')")
        if node.id in FUNCTIONS:
            raise ExpressionError(f"expression refused: {node.id!r} is a function; call it, "
                                  f"e.g. {node.id}(x)")
        if node.id not in CONSTANTS and node.id not in variables:
            variables.append(node.id)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise _refuse(f"the operator {type(node.op).__name__}")
        _check(node.left, variables, depth + 1)
        _check(node.right, variables, depth + 1)
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise _refuse(f"the operator {type(node.op).__name__}")
        _check(node.operand, variables, depth + 1)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise _refuse(_describe(node.func) if isinstance(node.func, ast.Attribute)
                          else "calling anything but a function name")
        name = node.func.id
        if name not in FUNCTIONS:
            raise ExpressionError(
                f"expression refused: unknown function {name!r}; allowed functions: "
                f"{', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise _refuse("keyword arguments")
        arity = FUNCTIONS[name][0]
        if not _arity_accepts(arity, len(node.args)) or \
                any(isinstance(a, ast.Starred) for a in node.args):
            raise ExpressionError(f"expression refused: {name} takes {_arity_text(arity)}, "
                                  f"got {len(node.args)}")
        for a in node.args:
            _check(a, variables, depth + 1)
    else:
        raise _refuse(_describe(node))


def _arity_accepts(arity: Arity, count: int) -> bool:
    if isinstance(arity, int):
        return count == arity
    fewest, most = arity
    return count >= fewest and (most is None or count <= most)


def _arity_text(arity: Arity) -> str:
    """``1 argument``, ``2 arguments``, ``1 or 2 arguments``, ``2 or more arguments``."""
    if isinstance(arity, int):
        return f"{arity} argument{'s' if arity != 1 else ''}"
    fewest, most = arity
    return f"{fewest} or more arguments" if most is None else f"{fewest} or {most} arguments"


# ----- SymPy expressions in: walked with a whitelist of SymPy classes, never printed and re-read
#: Most SymPy tree nodes accepted (as MAX_LENGTH bounds texts).
MAX_SYMPY_NODES = 10_000


def _sympy_classes() -> dict[type, str]:
    """SymPy function class -> the name of the same function in :data:`FUNCTIONS`."""
    import sympy

    from . import sympy_functions

    table = {getattr(sympy, n): n for n in (
        "sin", "cos", "tan", "sec", "csc", "cot", "asin", "acos", "atan", "asec", "acsc", "acot",
        "sinh", "cosh", "tanh", "sech", "csch", "coth", "asinh", "acosh", "atanh", "asech",
        "acsch", "acoth", "exp", "log", "Abs", "sign", "floor", "ceiling", "Heaviside", "Max",
        "Min", "atan2")}
    table.update({getattr(sympy_functions, n): n for n in ("relu", "sigmoid", "softplus")})
    return table


def from_sympy(expr: Any, variables: tuple[str, ...] | None = None) -> Expression:
    """A SymPy expression as a checked :class:`Expression` (numbers, symbols, ``+ * **`` and the
    functions of :data:`FUNCTIONS`; anything else is refused by name). Its variables are the
    free symbols sorted by name unless ``variables`` gives the order. Rationals stay exact in
    the expression (``1/3`` is the division 1/3, computed in floating point).

    >>> import math, sympy
    >>> x, y = sympy.symbols("x y")
    >>> e = from_sympy(sympy.sec(x) * y + sympy.Rational(1, 3))
    >>> e.variables, abs(float(e.function()(0.5, 2.0)) - (2 / math.cos(0.5) + 1 / 3)) < 1e-12
    (('x', 'y'), True)
    >>> from_sympy(sympy.Integral(x, x))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    workbench.exprparse.ExpressionError: SymPy expression refused: Integral is not supported; ...
    """
    import sympy

    if not isinstance(expr, sympy.Expr):
        raise ExpressionError(f"expected a SymPy expression, got {type(expr).__name__}")
    classes = _sympy_classes()
    count = 0
    for _ in sympy.preorder_traversal(expr):
        count += 1
        if count > MAX_SYMPY_NODES:
            raise ExpressionError(f"SymPy expression refused: more than {MAX_SYMPY_NODES:,} "
                                  "nodes")
    names = sorted(s.name for s in expr.free_symbols)
    for name in names:
        if not name.isidentifier() or name.startswith("_") or name in FUNCTIONS \
                or name in CONSTANTS or keyword.iskeyword(name):
            raise ExpressionError(
                f"SymPy expression refused: the symbol {name!r} cannot be a parameter name "
                "(use a Python identifier that is not a function or constant name, e.g. x or "
                "theta_1)")
    tree = _sympy_to_ast(expr, classes, 0)
    order = tuple(variables) if variables is not None else tuple(names)
    checked = Expression(str(expr), tree, tuple(names))
    _check(tree, [], 0)
    if variables is not None:
        _check_variables(checked, order)
    return Expression(str(expr), tree, order)


def _balanced(op: ast.operator, items: list[ast.expr]) -> ast.expr:
    """``a op b op c ...`` as a balanced tree (depth log n, not n)."""
    if len(items) == 1:
        return items[0]
    mid = len(items) // 2
    return ast.BinOp(_balanced(op, items[:mid]), op, _balanced(op, items[mid:]))


def _sympy_to_ast(e: Any, classes: dict[type, str], depth: int) -> ast.expr:
    import sympy

    if depth > MAX_DEPTH:
        raise ExpressionError(f"SymPy expression refused: nested deeper than {MAX_DEPTH} levels")
    if e.is_Symbol:
        return ast.Name(e.name, ast.Load())
    if e is sympy.pi:
        return ast.Name("pi", ast.Load())
    if e is sympy.E:
        return ast.Name("E", ast.Load())
    if e.is_Integer:
        return _signed(int(e))
    if e.is_Rational:
        return ast.BinOp(_signed(int(e.p)), ast.Div(), ast.Constant(int(e.q)))
    if e.is_Float and e.is_finite:
        return _signed(float(e))

    def walk(a):
        return _sympy_to_ast(a, classes, depth + 1)

    if e.is_Add:
        return _balanced(ast.Add(), [walk(a) for a in e.args])
    if e.is_Mul:
        return _balanced(ast.Mult(), [walk(a) for a in e.args])
    if e.is_Pow:
        base, exponent = e.args
        if exponent == sympy.S.Half:
            return ast.Call(ast.Name("sqrt", ast.Load()), [walk(base)], [])
        if exponent == -1:
            return ast.BinOp(ast.Constant(1), ast.Div(), walk(base))
        return ast.BinOp(walk(base), ast.Pow(), walk(exponent))
    name = classes.get(type(e))
    if name is not None:
        return ast.Call(ast.Name(name, ast.Load()), [walk(a) for a in e.args], [])
    what = type(e).__name__
    raise ExpressionError(
        f"SymPy expression refused: {what} is not supported; allowed: numbers, symbols, "
        f"+ - * / ** and the functions {', '.join(sorted(set(classes.values())))}")


def _signed(value: int | float) -> ast.expr:
    """A number as the parser would read it: a negative one as unary minus."""
    if value < 0:
        return ast.UnaryOp(ast.USub(), ast.Constant(-value))
    return ast.Constant(value)


def _check_variables(expr: Expression, order: tuple[str, ...]) -> None:
    missing = [v for v in expr.variables if v not in order]
    if missing:
        raise ExpressionError(f"expression {expr.text!r} uses {', '.join(missing)}, which the "
                              f"variable list ({', '.join(order)}) does not name")


def _numeric(node: ast.expr, env: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return env[node.id] if node.id in env else CONSTANTS[node.id][0]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_numeric(node.left, env), _numeric(node.right, env))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_numeric(node.operand, env))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)  # checked by _check
    return FUNCTIONS[node.func.id][1](*(_numeric(a, env) for a in node.args))


def _symbolic(node: ast.expr, env: dict[str, Any]) -> Any:
    import sympy

    if isinstance(node, ast.Constant):
        value = node.value
        return sympy.Integer(value) if isinstance(value, int) else sympy.Rational(repr(value))
    if isinstance(node, ast.Name):
        return env[node.id] if node.id in env else CONSTANTS[node.id][1]()
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_symbolic(node.left, env), _symbolic(node.right, env))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_symbolic(node.operand, env))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return FUNCTIONS[node.func.id][2]()(*(_symbolic(a, env) for a in node.args))
