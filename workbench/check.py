"""``wb.check``: the gradient four ways, compared entry by entry.

1. symbolic -- ``wb.grad`` (the reference the others are compared to);
2. tape -- ``wb.tape.grad``, the independent numeric reverse mode;
3. central finite differences, step ``h = cbrt(eps) * max(1, |x_i|)`` per entry;
4. ``torch.func.grad`` on the same function with torch tensors, when torch is installed and the
   function runs on tensors (else the report says why it is not applicable).

Non-finite gradients and inputs at a kink (a relu/abs argument exactly 0, a max with ties, a
clip at its bounds..., found on the tape) are reported as such: finite differences are not
meaningful there, while symbolic, tape and torch must still agree on torch's conventions.

>>> import workbench as wb, numpy as np
>>> report = wb.check(lambda x: np.sum(np.sin(x) * x), np.array([0.5, 1.5]))
>>> report.passed
True
>>> [m.method for m in report.inputs[0].methods][:2]
['tape', 'finite differences']
"""

from __future__ import annotations

import functools
import html
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import pytree
from . import tape as tape_module
from .errors import ArgnumsError, HasAuxError, InputTypeError, NonScalarOutputError, OutputTypeError
from .transforms.grad import check_argnums_type, grad, normalize_argnums

# Errors that mean the call itself is wrong (not a disagreement): raised, not reported.
_USER_ERRORS = (ArgnumsError, InputTypeError, NonScalarOutputError, OutputTypeError, HasAuxError)
_STEP = np.finfo(np.float64).eps ** (1.0 / 3.0)  # central differences: balances truncation/rounding
TOLERANCES = {  # (rtol, atol relative to the gradient's scale)
    "tape": (1e-7, 1e-10),
    "torch.func.grad": (1e-7, 1e-10),
    "finite differences": (1e-5, 1e-6),
}
_KINK_OPS = ("relu", "abs", "sign", "step", "maximum", "minimum", "step_tie", "amax", "amin",
             "clip", "in_range", "floor", "ceil", "sqrt", "atan2")


@dataclass
class MethodResult:
    """How one method's gradient of one input compares with the reference."""

    method: str
    status: str  # pass, fail, expected (finite differences differ for a known reason), n/a, error
    max_abs: float | None = None
    max_rel: float | None = None
    rtol: float | None = None
    atol: float | None = None
    failing: list[tuple[tuple, float, float]] = field(default_factory=list)  # (index, ref, value)
    nonfinite: list[tuple[tuple, float, float]] = field(default_factory=list)
    note: str = ""


@dataclass
class InputReport:
    label: str
    reference: np.ndarray | None
    methods: list[MethodResult]


@dataclass
class CheckReport:
    """The result of :func:`check`: per input, each method against the symbolic gradient."""

    function: str
    reference: str
    inputs: list[InputReport]
    kinks: list[str]
    notes: list[str]

    @property
    def passed(self) -> bool:
        """No method disagrees with the reference beyond tolerance (n/a and kinks aside)."""
        return all(m.status not in ("fail", "error") for r in self.inputs for m in r.methods) \
            and self.reference != "none"

    def _rows(self) -> list[list[str]]:
        rows = []
        for r in self.inputs:
            for m in r.methods:
                tol = "" if m.rtol is None else f"rtol={m.rtol:.3g}, atol={m.atol:.3g}"
                rows.append([r.label, m.method, _fmt(m.max_abs), _fmt(m.max_rel), tol,
                             m.status + (f" ({m.note})" if m.note else "")])
        return rows

    def _details(self) -> list[str]:
        lines = [f"kink: {k}" for k in self.kinks] + list(self.notes)
        for r in self.inputs:
            for m in r.methods:
                for index, ref, value in m.failing[:10]:
                    lines.append(f"{r.label}{_index_text(index)}: {m.method} gives {value!r}, "
                                 f"{self.reference} {ref!r}")
                if len(m.failing) > 10:
                    lines.append(f"{r.label}: {m.method}: {len(m.failing) - 10} more entries differ")
                for index, ref, value in m.nonfinite[:5]:
                    lines.append(f"{r.label}{_index_text(index)}: non-finite: {m.method} "
                                 f"{value!r}, {self.reference} {ref!r}")
        return lines

    def __repr__(self) -> str:
        header = ["input", "method", "max abs err", "max rel err", "tolerance", "verdict"]
        cells = [header] + self._rows()
        widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
        table = "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                          for row in cells)
        verdict = "PASS" if self.passed else "FAIL"
        text = f"wb.check({self.function}): {verdict} (errors against {self.reference})\n{table}"
        details = self._details()
        return text + ("\n" + "\n".join("- " + d for d in details) if details else "")

    def _repr_html_(self) -> str:
        colours = {"pass": "#d4edda", "fail": "#f8d7da", "error": "#f8d7da", "expected": "#fff3cd",
                   "n/a": "#e2e3e5"}
        header = "".join(f"<th>{h}</th>" for h in
                         ["input", "method", "max abs err", "max rel err", "tolerance", "verdict"])
        body = ""
        for row, status in zip(self._rows(), [m.status for r in self.inputs for m in r.methods]):
            style = f' style="background:{colours.get(status, "#ffffff")}"'
            body += f"<tr{style}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        verdict = "PASS" if self.passed else "FAIL"
        colour = "#1e7e34" if self.passed else "#bd2130"
        details = "".join(f"<li>{html.escape(d)}</li>" for d in self._details())
        return (f"<div class=\"wb-check\"><b style=\"color:{colour}\">{verdict}</b> "
                f"<code>wb.check({html.escape(self.function)})</code>, errors against "
                f"{html.escape(self.reference)}<table><thead><tr>{header}</tr></thead>"
                f"<tbody>{body}</tbody></table>" + (f"<ul>{details}</ul>" if details else "")
                + "</div>")


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.3g}"


def _index_text(index: tuple) -> str:
    return "" if index == () else "[" + ", ".join(str(i) for i in index) + "]"


def _short_error(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(error).__name__}: {text}"


# ----- the four methods -----
def _leaves(gradient: Any, argnums: Any) -> list[np.ndarray]:
    trees = [gradient] if isinstance(argnums, int) else list(gradient)
    out = []
    for tree in trees:
        for leaf in pytree.flatten(tree)[0]:
            if type(leaf).__module__.startswith("torch"):
                leaf = leaf.detach().cpu().numpy()
            out.append(np.asarray(leaf, dtype=np.float64))
    return out


def _evaluate(func: Callable, args: list, as_torch: bool) -> float:
    if as_torch:
        torch = sys.modules["torch"]
        args = [pytree.tree_map(lambda x: _as_torch(torch, x), a) for a in args]
    out = func(*args)
    if type(out).__module__.startswith("torch"):
        out = out.detach().cpu().numpy()
    return float(np.asarray(out))


def _evaluation_mode(func: Callable, args: tuple) -> bool:
    """False: ``func`` runs on the numpy arguments; True: only on torch tensors (x.sin()...)."""
    try:
        with np.errstate(all="ignore"):
            _evaluate(func, list(args), False)
        return False
    except Exception as numpy_error:  # noqa: BLE001
        try:
            import torch  # noqa: F401

            with np.errstate(all="ignore"):
                _evaluate(func, list(args), True)
            return True
        except Exception:  # noqa: BLE001
            raise numpy_error from None


def finite_differences(func: Callable, args: tuple, positions: tuple[int, ...],
                       max_entries: int = 2000, seconds: float = 20.0) -> tuple[list, str]:
    """Central differences of scalar ``func`` for every entry of the differentiated leaves.

    Past ``max_entries`` entries, an evenly spread subset is checked (the rest are nan);
    past ``seconds``, the remaining entries are left nan too. Returns (leaves, note).
    torch tensors of a lower precision (a float32 model) are evaluated in float64 where the
    function allows it; otherwise in their own precision, with a step sized for it.
    """
    args, step = _precise(func, args)
    per_leaf = []
    for pos in positions:
        leaves, tree = pytree.flatten(args[pos])
        for j, leaf in enumerate(leaves):
            per_leaf.append((pos, tree, leaves, j, np.array(_to_numpy(leaf), dtype=np.float64)))
    total = sum(x.size for *_, x in per_leaf)
    chosen = set(np.linspace(0, total - 1, max_entries).astype(int).tolist()) \
        if total > max_entries else None
    results, counter, start, note = [], 0, time.perf_counter(), ""
    as_torch = _evaluation_mode(func, args)
    with np.errstate(all="ignore"):
        for pos, tree, leaves, j, value in per_leaf:
            grad_leaf = np.full(value.shape, np.nan)
            flat = value.ravel()
            for i in range(flat.size):
                counter += 1
                if chosen is not None and counter - 1 not in chosen:
                    continue
                if time.perf_counter() - start > seconds:
                    note = f"finite differences stopped after {seconds:g} s"
                    break
                h = step(leaves[j]) * max(1.0, abs(flat[i]))
                values, points = [], []
                for sign in (1.0, -1.0):
                    bumped = flat.copy()
                    bumped[i] += sign * h
                    new_leaves = list(leaves)
                    new_leaves[j] = _like(leaves[j], bumped.reshape(value.shape))
                    points.append(float(np.ravel(_to_numpy(new_leaves[j]))[i]))  # as rounded
                    new_args = list(args)
                    new_args[pos] = pytree.unflatten(tree, new_leaves)
                    values.append(_evaluate(func, new_args, as_torch))
                grad_leaf.ravel()[i] = (values[0] - values[1]) / (points[0] - points[1])
            results.append(grad_leaf)
    if chosen is not None:
        note = f"finite differences checked {max_entries} of {total} entries"
    return results, note


def _to_numpy(x: Any) -> Any:
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    return x


def _precise(func: Callable, args: tuple) -> tuple[tuple, Callable[[Any], float]]:
    """``args`` with lower-precision torch tensors promoted to float64, if ``func`` runs on
    them (a functional_call model takes its parameters as arguments), and the relative
    difference step for a leaf (sized for float64, or for the leaf's own precision)."""
    def promote(x: Any) -> Any:
        if type(x).__module__.startswith("torch") and x.is_floating_point() and \
                x.dtype != sys.modules["torch"].float64:
            return x.double()
        return x

    promoted = tuple(pytree.tree_map(promote, a) for a in args)
    if any(a is not b for a, b in zip(pytree.flatten(promoted)[0], pytree.flatten(args)[0])):
        try:
            with np.errstate(all="ignore"):
                _evaluate(func, list(promoted), _evaluation_mode(func, promoted))
            return promoted, lambda leaf: _STEP
        except Exception:  # noqa: BLE001 - e.g. a float32 module closed over: its own precision
            return args, lambda leaf: float(np.finfo(_float_dtype(leaf)).eps) ** (1.0 / 3.0)
    return args, lambda leaf: _STEP


def _like(original: Any, array: np.ndarray) -> Any:
    """``array`` in the kind of value ``original`` was (float, numpy array, torch tensor)."""
    if isinstance(original, float):
        return float(array)
    if type(original).__module__.startswith("torch"):
        return sys.modules["torch"].from_numpy(array.copy()).to(original.dtype)
    return array[()] if array.ndim == 0 else array  # float64 even for float32 inputs: the
    # differences need its precision (a float32 step would round away most of h)


def _float_dtype(leaf: Any) -> np.dtype:
    dtype = np.asarray(_to_numpy(leaf)).dtype
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _as_torch(torch: Any, x: Any) -> Any:
    if isinstance(x, float) or isinstance(x, np.floating):
        return torch.tensor(float(x), dtype=torch.float64)
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return torch.from_numpy(np.array(x, dtype=np.float64))
    return x


def torch_gradient(func: Callable, args: tuple, argnums: Any) -> tuple[list | None, str]:
    """``torch.func.grad`` on tensor copies of ``args``; (None, reason) when not applicable."""
    try:
        import torch
        import torch.func
    except ImportError:
        return None, "torch is not installed"
    targs = [pytree.tree_map(lambda x: _as_torch(torch, x), a) for a in args]
    try:
        result = torch.func.grad(func, argnums=argnums)(*targs)
        return _leaves(result, argnums), ""
    except Exception as error:  # noqa: BLE001 -- any failure means "does not run on tensors"
        return None, _short_error(error)


def kinks(tape: tape_module.Tape, relative: float = 0.0) -> list[str]:
    """Entries of ``tape`` whose argument sits at a non-smooth point of their op.

    ``relative > 0`` also counts arguments within that relative distance of the kink.
    """
    found = []
    for e in tape.entries:
        if e.op not in _KINK_OPS:
            continue
        x = np.asarray(tape_module.core.raw(e.args[0]), dtype=np.float64)
        near = functools.partial(_near, relative=relative)
        if e.op in ("relu", "abs", "sign", "step", "sqrt"):
            hits = near(x, 0.0)
        elif e.op in ("maximum", "minimum", "step_tie"):
            hits = near(x, np.asarray(tape_module.core.raw(e.args[1]), dtype=np.float64))
        elif e.op == "atan2":  # singular at the origin
            y = np.asarray(tape_module.core.raw(e.args[1]), dtype=np.float64)
            hits = near(x, 0.0) & near(y, 0.0)
        elif e.op in ("amax", "amin"):
            ans = np.asarray(tape_module.core.raw(e.value))
            if not e.params["keepdims"] and e.params["axis"] is not None:
                ans = np.expand_dims(ans, e.params["axis"])
            ties = np.sum(near(x, ans), axis=e.params["axis"]) > 1
            hits = np.asarray(ties)
        elif e.op in ("clip", "in_range"):
            hits = near(x, e.params["lo"]) | near(x, e.params["hi"])
        else:  # floor, ceil: jumps at integers
            hits = near(x, np.round(x))
        _report(found, e.op, f"tape entry #{e.index}", hits, relative,
                "ties" if e.op in ("amax", "amin", "maximum", "minimum", "step_tie") else
                "argument at its kink")
    for name, left, right in tape.comparisons:
        hits = _near(np.asarray(left, dtype=np.float64), np.asarray(right, dtype=np.float64),
                     relative)
        _report(found, f"comparison {name}", "its two sides tie", hits, relative,
                "the branch taken switches there")
    return found


def _near(a: Any, b: Any, relative: float) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.abs(a - b) <= relative * np.maximum(1.0, np.abs(b))


def _report(found: list[str], op: str, where: str, hits: Any, relative: float, what: str) -> None:
    count = int(np.sum(hits))
    if count:
        how = "exactly" if relative == 0 else "near"
        found.append(f"{op} ({where}): {count} element(s) {how} at a non-smooth point ({what})")


# ----- comparing -----
def compare(method: str, reference: np.ndarray, value: np.ndarray, caveat: str = "",
            checked: np.ndarray | None = None, dtype: Any = np.float64) -> MethodResult:
    """Entry-wise comparison of ``value`` with ``reference`` under the method's tolerance.

    ``caveat`` (finite differences only): why they may differ here (a kink, a stop_gradient),
    which makes a difference "expected" rather than a failure. ``checked`` masks the entries
    the method computed (finite differences may skip some). Inputs of a lower precision
    (float32) widen the tolerance to a thousand of their epsilons.
    """
    rtol, atol_rel = TOLERANCES[method]
    rtol = max(rtol, 1e3 * float(np.finfo(dtype).eps))
    atol_rel = max(atol_rel, 1e3 * float(np.finfo(dtype).eps))
    reference, value = np.asarray(reference, np.float64), np.asarray(value, np.float64)
    checked = np.ones(reference.shape, bool) if checked is None else checked
    finite = np.isfinite(reference) & np.isfinite(value) & checked
    same = (reference == value) | (np.isnan(reference) & np.isnan(value))
    nonfinite = checked & ~(np.isfinite(reference) & np.isfinite(value)) & ~same
    atol = atol_rel * max(1.0, float(np.max(np.abs(reference[finite]), initial=0.0)))
    with np.errstate(all="ignore"):
        diff = np.where(finite, np.abs(reference - value), 0.0)
        # relative error where the reference is not (close to) zero
        rel = np.where(np.abs(reference) > atol, diff / np.abs(reference), 0.0)
    bad = finite & (diff > atol + rtol * np.abs(reference))
    result = MethodResult(method, "pass", float(np.max(diff, initial=0.0)),
                          float(np.max(rel, initial=0.0)), rtol, atol)
    result.failing = [(tuple(int(j) for j in i), float(reference[tuple(i)]),
                       float(value[tuple(i)])) for i in np.argwhere(bad)]
    result.nonfinite = [(tuple(int(j) for j in i), float(reference[tuple(i)]),
                         float(value[tuple(i)])) for i in np.argwhere(nonfinite)]
    if result.failing:
        expected = bool(caveat) and method == "finite differences"
        result.status, result.note = ("expected", caveat) if expected else ("fail", "")
    return result


def scalar_operations(tape: tape_module.Tape) -> int:
    """About how many scalar operations the run made (what the symbolic trace would hold)."""
    total = 0
    for e in tape.entries:
        size = int(np.size(tape_module.core.raw(e.value)))
        if e.op == "matmul":  # each output element is a dot product
            size *= int(np.shape(tape_module.core.raw(e.args[0]))[-1])
        total += size
    return total


def check(func: Callable, *args: Any, argnums: int | tuple[int, ...] = 0,
          fd_max_entries: int = 2000, fd_seconds: float = 20.0,
          symbolic_max_ops: int = 50_000) -> CheckReport:
    """Compare the gradient of scalar ``func`` at ``args`` four ways; return a report.

    ``report.passed`` is False when a method disagrees with the symbolic gradient beyond its
    tolerance; print the report (or show it in Jupyter) to see per-input errors, tolerances
    and the entries that differ. Budgets: finite differences check at most ``fd_max_entries``
    entries in ``fd_seconds``; runs of more than ``symbolic_max_ops`` scalar operations skip
    the symbolic gradient (its trace would take long) and compare against the tape instead.
    """
    check_argnums_type(argnums)
    positions = normalize_argnums(argnums, len(args), "wb.check")
    notes: list[str] = []

    tape, tape_leaves = None, None
    try:
        tape = tape_module.record(func, *args, argnums=argnums)
        tape_leaves = _leaves(tape.gradient, argnums)
    except _USER_ERRORS:
        raise
    except Exception as error:  # noqa: BLE001 -- reported; the other methods go on
        notes.append(f"tape failed: {_short_error(error)}")
    symbolic = None
    size = scalar_operations(tape) if tape is not None else 0
    if size > symbolic_max_ops:
        notes.append(f"symbolic wb.grad skipped: the run makes about {size} scalar operations "
                     f"(symbolic_max_ops={symbolic_max_ops}); errors are against the tape")
    else:
        try:
            symbolic = _leaves(grad(func, argnums=argnums)(*args), argnums)
        except _USER_ERRORS:
            raise
        except Exception as error:  # noqa: BLE001
            notes.append(f"symbolic wb.grad failed: {_short_error(error)}")

    exact = kinks(tape) if tape is not None else []
    near = [k for k in kinks(tape, relative=1e-6) if k not in
            [e.replace("exactly", "near") for e in exact]] if tape is not None else []
    cuts = sorted(tape.cuts) if tape is not None else []
    caveat = ("finite differences straddle a kink" if exact or near else
              f"finite differences see through {', '.join(cuts)}" if cuts else "")
    try:
        fd, fd_note = finite_differences(func, args, positions, fd_max_entries, fd_seconds)
    except Exception as error:  # noqa: BLE001 -- f does not run on plain arrays nor tensors
        fd, fd_note = None, f"finite differences: not applicable ({_short_error(error)})"
    if fd_note:
        notes.append(fd_note)
    torch_leaves, torch_reason = torch_gradient(func, args, argnums)
    if torch_leaves is None:
        notes.append(f"torch: not applicable ({torch_reason})")

    reference, ref_name = (symbolic, "symbolic") if symbolic is not None else \
        (tape_leaves, "tape") if tape_leaves is not None else (None, "none")
    candidates = [("tape", tape_leaves), ("finite differences", fd),
                  ("torch.func.grad", torch_leaves)]
    dtypes = [_float_dtype(leaf) for pos in positions for leaf in pytree.flatten(args[pos])[0]]
    inputs = []
    for k, label in enumerate(_labels(func, args, positions)):
        methods = []
        for method, leaves in candidates:
            if reference is None or (method == "tape" and ref_name == "tape"):
                continue
            if leaves is None:
                methods.append(MethodResult(method, "error" if method == "tape" else "n/a"))
                continue
            checked = ~np.isnan(leaves[k]) if method == "finite differences" and fd_note else None
            methods.append(compare(method, reference[k], leaves[k], caveat, checked, dtypes[k]))
        inputs.append(InputReport(label, None if reference is None else reference[k], methods))
    name = getattr(func, "__name__", type(func).__name__)
    return CheckReport(name, ref_name, inputs, exact + near, notes)


def _labels(func: Callable, args: tuple, positions: tuple[int, ...]) -> list[str]:
    from .tape.transforms import _parameter_names, leaf_labels

    names = _parameter_names(func)
    return [label for pos in positions for label in leaf_labels(
        pytree.flatten(args[pos])[1], names[pos] if pos < len(names) else f"arg{pos}")]

