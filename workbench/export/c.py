"""C99 source and header of a lowered program, with torch's conventions at non-smooth points.

Calling convention (also written into the header): scalar parameters are passed by value as
``double``; array parameters as ``const double *`` to their elements in C (row-major) order,
with the shape fixed at export time; each gradient is written through a ``double *`` to as many
doubles as its parameter has elements (one for a scalar). Functions return 0 on success and 1
when the inputs are outside the branch region the code was traced in (outputs untouched).

Every op is printed by the table below; one it does not have is an ``ExportError``. The
non-smooth ops follow torch: ``relu'(0) = 0`` (``step`` is ``x > 0 ? 1 : 0``), ``abs'(0) = 0``
(``sign(0) = 0``), ties of ``maximum``/``minimum`` give 1/2 to each side, nan propagates
through ``max``/``min``/``relu`` as in torch.

>>> import workbench as wb
>>> from workbench.display.capture import capture
>>> from workbench.export.program import lower
>>> p = lower(capture(lambda x: wb.relu(x) * x, (0.5,)))
>>> print(function_source(p, "grad_f", p.gradients, ["grad_x"]))
int grad_f(double x, double *grad_x) {
    const double relu_1 = (!((x) <= 0.0) ? (x) : 0.0);
    const double step_2 = ((x) > 0.0 ? 1.0 : 0.0);
    const double mul_3 = (x * step_2);
    const double add_4 = (relu_1 + mul_3);
    grad_x[0] = add_4;
    return 0;
}
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from .program import Arg, Assignment, Const, Output, Program, identifier, needed_names
from .python_like import ExportError

_MATH = {"sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin", "acos": "acos",
         "atan": "atan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "asinh": "asinh",
         "acosh": "acosh", "atanh": "atanh", "exp": "exp", "expm1": "expm1", "log": "log",
         "log1p": "log1p", "log2": "log2", "log10": "log10", "sqrt": "sqrt", "abs": "fabs",
         "floor": "floor", "ceil": "ceil"}


def _pow(args: list[str], params: tuple) -> str:
    return f"({args[0]} * {args[0]})" if args[1] == "2.0" else f"pow({args[0]}, {args[1]})"


def _fold(helper: str) -> Callable[[list[str], tuple], str]:
    def printer(args: list[str], params: tuple) -> str:
        text = args[0]
        for a in args[1:]:
            text = f"{helper}({text}, {a})"
        return text

    return printer


_SPECIAL: dict[str, str | Callable[[list[str], tuple], str]] = {
    "add": lambda a, p: "(" + " + ".join(a) + ")",
    "sub": "({0} - {1})",
    "mul": "({0} * {1})",
    "div": "({0} / {1})",
    "neg": "(-{0})",
    "pow": _pow,
    "sign": "(({0}) > 0.0 ? 1.0 : (({0}) < 0.0 ? -1.0 : ({0}) - ({0})))",
    "relu": "(!(({0}) <= 0.0) ? ({0}) : 0.0)",
    "step": "(({0}) > 0.0 ? 1.0 : 0.0)",
    "sigmoid": "(1.0 / (1.0 + exp(-({0}))))",
    "softplus": "(({0}) > 20.0 ? ({0}) : log1p(exp({0})))",
    "atan2": "atan2({0}, {1})",
    "maximum": "wb_max2({0}, {1})",
    "minimum": "wb_min2({0}, {1})",
    "max_n": _fold("wb_max2"),
    "min_n": _fold("wb_min2"),
    "step_tie": "(({0}) > ({1}) ? 1.0 : (({0}) == ({1}) ? 0.5 : 0.0))",
    "clip": "(({0}) > {p1} ? {p1} : (({0}) < {p0} ? {p0} : ({0})))",
    "mod": "wb_mod({0}, {1})",
    "floordiv": "wb_floordiv({0}, {1})",
    "in_range": "(({p0}) <= ({0}) && ({0}) <= ({p1}) ? 1.0 : 0.0)",
    "where": "(({0}) ? ({1}) : ({2}))",
    "gt": "(({0}) > ({1}))", "ge": "(({0}) >= ({1}))", "lt": "(({0}) < ({1}))",
    "le": "(({0}) <= ({1}))", "eq": "(({0}) == ({1}))", "ne": "(({0}) != ({1}))",
    "logical_and": "(({0}) && ({1}))", "logical_or": "(({0}) || ({1}))",
    "logical_not": "(!({0}))",
}

# nan propagates and ties return either (equal) value: torch.maximum / torch.minimum.
_HELPERS = """static inline double wb_max2(double a, double b) {
    return a >= b ? a : (b > a ? b : a + b);
}
static inline double wb_min2(double a, double b) {
    return a <= b ? a : (b < a ? b : a + b);
}
/* Python's, numpy's and torch's float % and // (the divisor's sign; exact for tiny and
   infinite divisors), as CPython's float_divmod computes them. */
static inline double wb_mod(double a, double b) {
    double m = fmod(a, b);
    if (m != 0.0) {
        if ((b < 0.0) != (m < 0.0)) m += b;
    } else {
        m = copysign(0.0, b);
    }
    return m;
}
static inline double wb_floordiv(double a, double b) {
    if (b == 0.0) return a / b;
    double m = fmod(a, b);
    double q = (a - m) / b;
    if (m != 0.0 && ((b < 0.0) != (m < 0.0))) q -= 1.0;
    if (q != 0.0) {
        double f = floor(q);
        return q - f > 0.5 ? f + 1.0 : f;
    }
    return copysign(0.0, a / b);
}
"""


def literal(value: float | bool) -> str:
    """A C literal for a constant (``NAN``/``INFINITY`` from math.h; negatives parenthesised)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "1" if value else "0"
    v = float(value)
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "(-INFINITY)"
    text = repr(v)
    return f"({text})" if text.startswith("-") else text


def _arg(a: Arg) -> str:
    return literal(a.value) if isinstance(a, Const) else a


def expression(step: Assignment) -> str:
    args = [_arg(a) for a in step.args]
    if step.op in _MATH:
        return f"{_MATH[step.op]}({args[0]})"
    printer = _SPECIAL.get(step.op)
    if printer is None:
        raise ExportError(f"target 'c' cannot print the op {step.op!r}; export to numpy instead")
    if callable(printer):
        return printer(args, step.params)
    return printer.format(*args, **{f"p{i}": literal(float(p)) for i, p in enumerate(step.params)})


def _signature(program: Program, name: str, out_names: list[str]) -> str:
    params = [f"double {p.name}" if p.shape == () else f"const double *{p.name}"
              for p in program.params]
    params += [f"double *{o}" for o in out_names]
    return f"int {name}({', '.join(params)})"


def function_source(program: Program, name: str, outputs: list[Output],
                    out_names: list[str]) -> str:
    lines: list[str] = []
    needed = needed_names(program, outputs)
    guard_after: dict[str, list[bool]] = {}
    for g in program.guards:
        if isinstance(g.name, Const):
            if bool(g.name.value) != g.expected:
                lines.append("    return 1;  /* outside the traced branch everywhere */")
            continue
        guard_after.setdefault(g.name, []).append(g.expected)
    for s in program.assignments:
        if s.name not in needed:
            continue
        ctype = "int" if s.boolean else "double"
        lines.append(f"    const {ctype} {s.name} = {expression(s)};")
        for expected in guard_after.pop(s.name, []):
            lines.append(f"    if ({'!' if expected else ''}{s.name}) return 1;"
                         "  /* outside the traced branch */")
    for param_name, expecteds in guard_after.items():  # guards on the inputs themselves
        for expected in expecteds:
            lines.append(f"    if ({'!' if expected else ''}{param_name}) return 1;")
    for out, out_name in zip(outputs, out_names):
        for i, item in enumerate(out.names):
            lines.append(f"    {out_name}[{i}] = {_arg(item)};")
    lines.append("    return 0;")
    # Unpack only the array elements the body reads, and mark parameters it never reads as
    # used: a gradient that does not depend on an input (d(x + y)/dy) must still compile
    # under -Wall -Wextra -Werror.
    body = "\n".join(lines)
    used = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", body))
    head = [_signature(program, name, out_names) + " {"]
    for p in program.params:
        elements = [(i, e) for i, e in enumerate(p.elements) if e in used] if p.shape != () else []
        head += [f"    const double {e} = {p.name}[{i}];" for i, e in elements]
        if p.name not in used and not elements:
            head.append(f"    (void){p.name};  /* the result does not depend on it */")
    return "\n".join(head + lines + ["}"])


def _names(program: Program) -> set[str]:
    """Every name a function body of ``program`` declares."""
    names = {p.name for p in program.params} | {e for p in program.params for e in p.elements}
    return names | {s.name for s in program.assignments}


def sources(programs: list[Program], header_name: str, comment: str,
            with_value: bool) -> tuple[str, str]:
    """(C source, header) of ``grad_<name>`` (and ``value_<name>``). With several programs
    (branches traced at several example points) each is a static function, tried in order."""
    program = programs[0]
    taken = {n for p in programs for n in _names(p)}
    grad_outs = []
    for k in program.wrt:  # grad_<param>, unless the function already has a name like that
        grad_outs.append(identifier(f"grad_{program.params[k].name}", taken))
        taken.add(grad_outs[-1])
    kinds = [(f"grad_{program.name}", "gradients", grad_outs)]
    if with_value:
        kinds.append((f"value_{program.name}", "value", ["value"]))
    guard = "WB_" + "".join(c if c.isalnum() else "_" for c in header_name.upper())
    shapes = "\n".join(f" *   {p.name}: " + ("double (scalar)" if p.shape == () else
                                              f"const double[{len(p.elements)}], shape "
                                              f"{p.shape}, C order") for p in program.params)
    convention = (
        "/* Calling convention: scalar parameters are doubles passed by value; array parameters\n"
        " * are pointers to their elements in C (row-major) order:\n" + shapes + "\n"
        " * Each output pointer receives as many doubles as its parameter has elements.\n"
        " * Return value: 0 on success, 1 if the inputs are outside the branch region(s) the\n"
        " * code was traced in (then the outputs are not written). */\n")
    prototypes = "\n".join(_signature(program, n, o) + ";" for n, _, o in kinds)
    header = (f"/* {comment} */\n#ifndef {guard}\n#define {guard}\n\n{convention}\n"
              f"{prototypes}\n\n#endif\n")
    bodies = []
    for name, attr, out_names in kinds:
        def outputs(p: Program, attr: str = attr) -> list[Output]:
            return p.gradients if attr == "gradients" else [p.value]

        if len(programs) == 1:
            bodies.append(function_source(program, name, outputs(program), out_names))
            continue
        for k, branch in enumerate(programs):
            bodies.append("static " + function_source(branch, f"{name}_branch{k}",
                                                      outputs(branch), out_names))
        call_args = ", ".join([p.name for p in program.params] + out_names)
        lines = [_signature(program, name, out_names) + " {"]
        lines += [f"    if ({name}_branch{k}({call_args}) == 0) return 0;"
                  for k in range(len(programs))]
        lines += ["    return 1;  /* outside every traced branch */", "}"]
        bodies.append("\n".join(lines))
    source = (f"/* {comment} */\n#include <math.h>\n#include \"{header_name}\"\n\n{_HELPERS}\n"
              + "\n\n".join(bodies) + "\n")
    return source, header
