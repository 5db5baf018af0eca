"""Export of traced gradients as code: numpy, C, JAX, torch modules and LaTeX formulas.

``wb.export(func, *example_args, argnums=0, target="numpy", path=None)`` traces ``func`` once at
the example arguments (which fix the shapes of array parameters), differentiates it, and prints
the gradient -- one assignment per distinct subexpression of the traced graph -- in the chosen
target. Functions with Python control flow export the branch they were traced in, with a guard
that raises (or, in C, returns 1) outside it. The readable formula goes into the docstring.

>>> import numpy as np, workbench as wb
>>> code = wb.export(lambda x, y: np.sin(x) * y, 0.5, 2.0)
>>> print(code.source.split("def grad_f")[1].strip())
(x, y):
    \"\"\"The gradient of f with respect to x: ∂f/∂x.\"\"\"
    x = _input(x, "x", ())
    y = _input(y, "y", ())
    cos_1 = float(np.cos(x))
    mul_2 = (y * cos_1)
    return np.float64(mul_2)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import api_boundary

TARGETS = ("numpy", "c", "jax", "torch", "latex")


@dataclass
class Exported:
    """Generated code: ``source`` (and ``header`` for C), the files written, the function names."""

    target: str
    source: str
    header: str = ""
    paths: list[Path] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        where = f", written to {', '.join(map(str, self.paths))}" if self.paths else ""
        return (f"<wb.export target={self.target!r}: {', '.join(self.functions) or 'formulas'}, "
                f"{len(self.source.splitlines())} lines{where}>")


@api_boundary
def export(func: Callable, *example_args: Any, argnums: int | tuple[int, ...] = 0,
           target: str = "numpy", path: str | Path | None = None, name: str | None = None,
           with_value: bool = False, also_at: Sequence[Sequence[Any]] = ()) -> Exported:
    """The gradient of ``func`` w.r.t. ``argnums`` as standalone code in ``target``.

    * ``"numpy"``: a module importing only numpy, with ``grad_<name>(<params>)`` (and
      ``value_<name>`` with ``with_value=True``), input shape checks and the formula in its
      docstring; ``"jax"`` / ``"torch"``: the same over ``jax.numpy`` / ``torch``;
    * ``"c"``: C99 source and header (``.header``; written beside ``path`` as ``.h``), see
      :mod:`workbench.export.c` for the calling convention;
    * ``"latex"``: the simplified formulas in an ``align`` environment (in Jupyter the result
      renders as mathematics; ``str()`` and the file written are the LaTeX source).

    ``example_args`` fix the shapes (and the branch of any control flow); with none, every
    parameter is a scalar traced at 0.5 (0.625, ...). Code for a function with control flow
    covers the branch taken there, and raises (C: returns 1) outside it; ``also_at`` lists more
    example-argument tuples, whose branches are exported too (the first branch whose
    conditions hold computes the result; not for ``jax``, whose code must run under jit).
    ``path`` writes the result to a file. For a function of array arguments that the array
    level traces, the numpy, jax and torch modules are that program, one statement per array
    operation (:mod:`workbench.export.array_numpy`; its docstring names no element formula);
    its arguments may then be pytrees (a dict of a torch module's parameters, class labels).
    """
    from ..display.capture import capture
    from ..display.derivative import Derivative
    from ..display.formula import build_formula

    _check_options(func, example_args, target, path, name, also_at)
    if target in ("numpy", "jax", "torch") and not also_at:  # array functions: a statement per array op
        from .array_numpy import array_export

        why: list[str] = []
        exported = array_export(func, example_args, argnums, name=name, with_value=with_value,
                                target=target, why=why)
        if exported is not None:
            return _written(exported, path)
        _refuse_containers(func, example_args, argnums, why)
    points = [tuple(example_args)] + [tuple(a) for a in also_at]
    captures = [capture(func, p, argnums=argnums, order=1, transform="export") for p in points]
    captures = _distinct_branches(captures)
    derivatives = []
    for cap in captures:
        if name is not None:
            cap.name = name
        derivatives.append(Derivative(cap, [build_formula(cap, n) for n in cap.derivatives],
                                      build_formula(cap, cap.output, simplify_it=False),
                                      several=isinstance(argnums, tuple)))
    if target == "latex":
        from .latex import LatexExport, latex_source, rendered

        result = LatexExport("latex", "\n\n".join(latex_source(d) for d in derivatives),
                             rendered=rendered(derivatives))
    else:
        result = _code(captures, derivatives, argnums, target, with_value, path)
    return _written(result, path)


def _refuse_containers(func, example_args: tuple, argnums, why: list[str]) -> None:
    """Differentiated dicts, tuples and lists of arrays are exported at array level only: say
    why that failed (the element export would only say it cannot differentiate a dict)."""
    from ..transforms.grad import normalize_argnums
    from .python_like import ExportError

    try:
        positions = normalize_argnums(argnums, len(example_args), "export")
    except Exception:
        return  # the element export words this error
    for k in positions:
        if isinstance(example_args[k], (dict, tuple, list)) and not _one_array(example_args[k]):
            reason = why[0] if why else "the program's ops"
            raise ExportError(
                f"export: argument {k} is a {type(example_args[k]).__name__}, which only the "
                f"array-level export differentiates, and that cannot export this function "
                f"({reason:.300}); pass the arrays as separate arguments, or see "
                "wb.supported_functions() for what the array level traces")


def _one_array(value) -> bool:
    """A list or tuple the element export reads as one float array (as it did before the array
    export took pytrees): numbers, or arrays of one shape."""
    import numpy as np

    if not isinstance(value, (list, tuple)):
        return False
    try:
        return np.asarray(value).dtype.kind in "fiu"
    except (ValueError, TypeError):
        return False


def _written(result: Exported, path: str | Path | None) -> Exported:
    """``result``, written to ``path`` (and its header beside it) when a path is given."""
    if path is not None:
        path = Path(path)
        _write(path, result.source)
        result.paths.append(path)
        if result.header:
            header_path = path.with_suffix(".h")
            _write(header_path, result.header)
            result.paths.append(header_path)
    return result


def _check_options(func, example_args: tuple, target, path, name, also_at) -> None:
    """Refuse bad options by name before anything is traced."""
    from .python_like import ExportError

    if not callable(func):
        raise ExportError(f"export: the function must be callable, got {type(func).__name__} "
                          f"({func!r:.60}); for a formula in text, use the command line "
                          "(python -m workbench export 'x**2 * sin(y)')")
    if target not in TARGETS:
        raise ExportError(f"unknown export target {target!r}; choose one of {', '.join(TARGETS)}")
    if path is not None and not isinstance(path, (str, Path)):
        raise ExportError(f"export: path must be a str or pathlib.Path, got "
                          f"{type(path).__name__} ({path!r:.60})")
    if name is not None and (not isinstance(name, str) or not name.isidentifier()):
        raise ExportError(f"export: name must be a Python identifier (the exported functions "
                          f"are grad_<name>, value_<name>), got {name!r:.60}")
    if isinstance(also_at, (str, bytes)) or not hasattr(also_at, "__iter__"):
        raise ExportError(f"export: also_at must be a list of example-argument tuples, got "
                          f"{type(also_at).__name__}")
    for k, point in enumerate(also_at):
        if not isinstance(point, (tuple, list)) or len(point) != len(example_args):
            raise ExportError(
                f"export: also_at[{k}] must be a tuple of {len(example_args)} example "
                f"argument(s), like the ones given for the first point, got {point!r:.60}; "
                f"write also_at=[({', '.join(['...'] * len(example_args))},)]")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        from ..errors import OutputPathError

        raise OutputPathError(f"export: cannot write {str(path)!r}: {exc.strerror or exc}; give "
                          "path= a file in a directory you can write to") from None


def _distinct_branches(captures: list) -> list:
    """One capture per distinct branch (same guards: same branch), in the order given; none
    after a capture with no guards at all (it covers every input)."""
    kept, seen = [], set()
    for cap in captures:
        key = tuple(zip(_guard_texts(cap), (expected for _, expected in cap.guards)))
        if key in seen:
            continue
        shapes = [(p.name, p.shape) for p in cap.params]
        if kept and shapes != [(p.name, p.shape) for p in kept[0].params]:
            from .python_like import ExportError

            raise ExportError("export: every example point in also_at must give the "
                              f"parameters the same shapes as the first ({shapes} differs)")
        seen.add(key)
        kept.append(cap)
        if not cap.guards:
            break
    return kept


def _code(captures, derivatives, argnums, target: str, with_value: bool, path) -> Exported:
    from .. import __version__
    from .program import lower

    cap = captures[0]
    programs = []
    for c in captures:
        program = lower(c, with_value, guard_texts=_guard_texts(c))
        program.several = isinstance(argnums, tuple)
        programs.append(program)
    program = programs[0]
    wrt = ", ".join(program.params[k].name for k in program.wrt)
    shapes = ", ".join(f"{p.name}: {p.shape}" for p in program.params)
    grad_name = f"grad_{program.name}"
    functions = [grad_name] + ([f"value_{program.name}"] if with_value else [])
    outside = "return 1." if target == "c" else "raise ValueError."
    lines = [f"Gradient of {cap.name} with respect to {wrt}, exported by workbench "
             f"{__version__} (target {target!r}).", ""]
    for k, derivative in enumerate(derivatives):
        valid = ", ".join(str(g) for g in derivative.guards)
        if len(derivatives) > 1:
            lines.append(f"Branch {k + 1}, where {valid or 'no other branch applies'}:")
        lines += ["    " + ln for ln in _formula_text(derivative)]
        if len(derivatives) == 1 and valid:
            lines += ["", f"Valid where {valid} (the branch traced); outside, the functions "
                      + outside]
    if len(derivatives) > 1:
        lines += ["", "The first branch whose conditions hold is used; outside all of them "
                  f"the functions {outside}"]
    lines += ["", f"Generated by wb.export from {len(captures)} trace(s) at example arguments "
              f"of shapes {shapes}:",
              "one assignment per distinct subexpression of the traced graph (common",
              "subexpressions are named locals). Non-smooth points follow torch's conventions",
              "(relu'(0) = 0, abs'(0) = 0, ties of max/min split the gradient evenly)."]
    doc = "\n".join(lines)
    if target == "c":
        from .c import sources

        header_name = Path(path).with_suffix(".h").name if path else f"{program.name}.h"
        source, header = sources(programs, header_name, doc.replace("*/", "* /"), with_value)
        return Exported("c", source, header, functions=functions)
    from .python_like import DIALECTS, module_source

    labels = [derivatives[0].label(k, latex=False) for k in cap.wrt]
    grad_doc = f"The gradient of {cap.name} with respect to {wrt}: {', '.join(labels)}."
    value_doc = f"The value of {cap.name}." if with_value else None
    source = module_source(programs, DIALECTS[target], doc.replace('"""', "'''"), grad_doc,
                           value_doc)
    return Exported(target, source, functions=functions)


_MAX_DOC_CHARS = 1500


def _formula_text(derivative) -> list[str]:
    """The derivative as text lines for a docstring (or one line saying it is too long)."""
    lines = []
    for pos, f in zip(derivative.capture.wrt, derivative.formulas):
        label = derivative.label(pos, latex=False)
        text = str(f.expr) if f.expr is not None else None
        if text is None or len(text) > _MAX_DOC_CHARS:
            lines.append(f"{label}: {f.size.ops:,} operations after CSE (too long to print here; "
                         "see the code)")
        else:
            lines.append(f"{label} = {text}")
    return lines


def _guard_texts(cap) -> list[str]:
    """A readable condition for each guard (empty where it would be too big to print)."""
    from ..config import config
    from ..display.formula import symbols_of
    from ..symbolic.to_sympy import to_sympy, tree_sizes

    nodes = [n for n, _ in cap.guards]
    if not nodes or sum(tree_sizes(cap.graph, nodes).values()) > config.pretty_max_ops:
        return [""] * len(nodes)
    return [str(e) for e in to_sympy(cap.graph, nodes, symbols_of(cap))]
