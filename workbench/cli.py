"""``python -m workbench export``: export a gradient from the command line.

The function is either ``module:function`` (imported from the current directory or the
installed packages, like ``python -m``) or an expression string, which goes through the
whitelisting parser of :mod:`workbench.exprparse` (never ``eval``/``sympify``).

>>> main(["export", "x**2 * sin(y)", "--argnums", "0,1", "--target", "latex"])
% Derivative of expression, exported by workbench (wb.export target="latex").
\\begin{align}
\\frac{\\partial\\,\\mathrm{expression}}{\\partial x} &= 2 x \\sin{\\left(y \\right)} \\\\
\\frac{\\partial\\,\\mathrm{expression}}{\\partial y} &= x^{2} \\cos{\\left(y \\right)}
\\end{align}
0
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .errors import WorkbenchError

EXAMPLES = """\
examples:
  python -m workbench export "x**2 * sin(y)" --argnums 0,1 --target c -o grad.c
  python -m workbench export "sum(tanh(w) * x)" --shape w=3 --shape x=3 --target numpy -o g.py
  python -m workbench export mymodel:loss --shape theta=4 --at theta=0.1 --target jax -o g.py
  python -m workbench export "relu(x) + log1p(x**2)" --target latex
  python -m workbench export piece:f --at x=2 --also-at "x=-2" --target c -o f.c

Expressions may use numbers, variable names, + - * / **, pi, e and the functions
  {functions}
(anything else, such as attribute access, subscripts or lambdas, is refused).
Array parameters get their shape from --shape; their example values (which fix the branch
of any control flow) are 0.5, 0.51, ... unless --at gives one value for all elements.
"""

_MODULE_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class CommandLineError(WorkbenchError, ValueError):
    """A command-line argument is malformed."""


def parser() -> argparse.ArgumentParser:
    from .exprparse import FUNCTIONS

    top = argparse.ArgumentParser(prog="python -m workbench",
                                  description="workbench command-line tools")
    commands = top.add_subparsers(dest="command", required=True)
    export = commands.add_parser(
        "export", help="export the gradient of a function as code",
        description="Export the gradient of a function (module:function or an expression) as "
                    "a numpy, C, JAX or torch module, or LaTeX formulas.",
        epilog=EXAMPLES.format(functions=", ".join(sorted(FUNCTIONS))),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("function", help="module:function, or an expression such as "
                                         "'x**2 * sin(y)'")
    export.add_argument("--argnums", default="0",
                        help="positions of the parameters to differentiate: 0 or 0,1 "
                             "(default 0)")
    export.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS",
                        help="shape of an array parameter, e.g. w=3 or W=2,3 (default scalar)")
    export.add_argument("--at", action="append", default=[], metavar="NAME=VALUE",
                        help="example value of a parameter (all its elements)")
    export.add_argument("--target", default="numpy", choices=["numpy", "c", "jax", "torch",
                                                              "latex"])
    export.add_argument("-o", "--output", type=Path, help="output file (default: stdout; for "
                                                          "C the header goes beside it as .h)")
    export.add_argument("--name", help="name of the exported function (default: the "
                                       "function's own)")
    export.add_argument("--with-value", action="store_true",
                        help="also export the value function")
    export.add_argument("--vars", help="for expressions: the parameter order, e.g. y,x "
                                       "(default: order of first appearance)")
    export.add_argument("--also-at", action="append", default=[], metavar="'NAME=VALUE ...'",
                        help="one more example point (space-separated NAME=VALUE, the other "
                             "parameters as --at): its branch of any control flow is exported "
                             "too (not for --target jax)")
    return top


def _pairs(items: Sequence[str], what: str) -> dict[str, str]:
    table = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise CommandLineError(f"--{what} expects NAME=VALUE, got {item!r}")
        table[name.strip()] = value.strip()
    return table


def _argnums(text: str) -> int | tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise CommandLineError(f"--argnums expects integers like 0 or 0,1, got {text!r}") from None
    return values[0] if len(values) == 1 and "," not in text else values


def load_function(spec: str, variables: str | None) -> Callable:
    """``module:function`` imported, or an expression parsed by the whitelisting parser."""
    if _MODULE_FUNCTION.match(spec):
        module_name, _, attr = spec.partition(":")
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            obj = importlib.import_module(module_name)
        except ImportError as exc:
            raise CommandLineError(f"cannot import module {module_name!r}: {exc}") from None
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise CommandLineError(f"module {module_name!r} has no attribute {attr!r}")
            obj = getattr(obj, part)
        if not callable(obj):
            raise CommandLineError(f"{spec} is not a function")
        return obj
    from .exprparse import parse

    expression = parse(spec)
    order = tuple(v.strip() for v in variables.split(",")) if variables else None
    return expression.function(order)


def example_arguments(func: Callable, shapes: dict[str, str], values: dict[str, str]) -> list:
    from .display.capture import DEFAULT_EXAMPLES, parameter_names

    names = parameter_names(func, None)
    unknown = sorted((set(shapes) | set(values)) - set(names))
    if unknown:
        raise CommandLineError(f"{', '.join(unknown)}: not a parameter of the function "
                               f"(its parameters are {', '.join(names)})")
    args = []
    for k, name in enumerate(names):
        try:
            shape = tuple(int(d) for d in shapes[name].split(",")) if name in shapes else ()
        except ValueError:
            raise CommandLineError(f"--shape {name}= expects integers like 3 or 2,3") from None
        try:
            base = float(values[name]) if name in values else DEFAULT_EXAMPLES[k % 8]
        except ValueError:
            raise CommandLineError(f"--at {name}= expects a number, got {values[name]!r}") \
                from None
        size = int(np.prod(shape)) if shape else 1
        step = 0.0 if name in values else 0.01  # distinct elements: no ties in max/min
        args.append(base if not shape else (base + step * np.arange(size)).reshape(shape))
    return args


def run_export(options: argparse.Namespace) -> int:
    from .export import export

    func = load_function(options.function, options.vars)
    shapes, at = _pairs(options.shape, "shape"), _pairs(options.at, "at")
    args = example_arguments(func, shapes, at)
    if inspect.signature(func).parameters and not args:
        raise CommandLineError("the function has no positional parameters to differentiate")
    also_at = [example_arguments(func, shapes, {**at, **_pairs(point.split(), "also-at")})
               for point in options.also_at]
    result = export(func, *args, argnums=_argnums(options.argnums), target=options.target,
                    path=options.output, name=options.name, with_value=options.with_value,
                    also_at=also_at)
    if options.output is None:
        print(result.source, end="" if result.source.endswith("\n") else "\n")
        if result.header:
            print("/* ----- header ----- */")
            print(result.header, end="")
    else:
        print(f"wrote {', '.join(map(str, result.paths))}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2: usage, 1: the export failed)."""
    options = parser().parse_args(argv)
    try:
        return run_export(options)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
