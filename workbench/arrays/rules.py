"""Structural array ops: printers, constructors and reverse-mode rules.

Each constructor (``reduce_sum``, ``reshape``, ``index``, ``contract``...) checks its arguments,
normalises them (axes as sorted tuples, einsum letters without single-operand sums) and emits one
node. Each rule's VJP is written with these constructors and the elementwise builder methods, so
derivatives are graph nodes too and differentiate again (``grad(grad(f))``, ``hessian``).

>>> import numpy as np
>>> from workbench.arrays.graph import ArrayGraph
>>> g = ArrayGraph()
>>> a = g.input(np.ones((2, 3)), "a"); b = g.input(np.ones((3, 4)), "b")
>>> c = contract(g, "ij,jk->ik", a, b)
>>> code_of("einsum", ["a", "b"], g.params[c]), g.shape(c)
('(a @ b)', (2, 4))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .graph import ARRAY_RUNTIME, RULES, ArrayGraph, NotArrayLevel, Rule, code_of

# ----- helpers the generated code calls -----


def _scatter_add(shape: tuple, index: tuple, values, basic: bool):
    """Zeros of ``shape`` with ``values`` added at ``index`` (repeated indices accumulate)."""
    out = np.zeros(shape)
    if basic:
        out[index] = values
    else:
        np.add.at(out, index, values)
    return out


ARRAY_RUNTIME["_scatter_add"] = _scatter_add


# ----- shape helpers -----
def keep_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def normalize_axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise NotArrayLevel(f"axis {a!r}")
        if not -ndim <= a < max(ndim, 1):
            raise NotArrayLevel(f"axis {a} out of range")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise NotArrayLevel("repeated axis")
    return tuple(sorted(out))


# ----- reductions -----
def reduce_sum(g: ArrayGraph, x: int, axes: tuple[int, ...], keepdims: bool = False) -> int:
    if not axes and not keepdims:
        return x
    return g.emit("sum", (x,), (axes, keepdims))


def _sum_vjp(g: ArrayGraph, node: int, ct: int):
    (x,) = g.args[node]
    axes, keepdims = g.params[node]
    shape = g.shape(x)
    if not keepdims:
        ct = reshape(g, ct, keep_shape(shape, axes))
    return (broadcast_to(g, ct, shape),)


def reduce_extreme(g: ArrayGraph, kind: str, x: int, axes: tuple[int, ...], keepdims: bool) -> int:
    if any(g.shape(x)[a] == 0 for a in axes):
        raise NotArrayLevel("max of an empty axis")
    return g.emit(kind, (x,), (axes, keepdims))


def _extreme_vjp(g: ArrayGraph, node: int, ct: int):
    """Ties split the gradient evenly among the extreme entries (torch's amax/amin); a nan
    result sends it to the nan entries."""
    (x,) = g.args[node]
    axes, keepdims = g.params[node]
    shape = g.shape(x)
    out = node
    if not keepdims:
        out = reshape(g, node, keep_shape(shape, axes))
        ct = reshape(g, ct, keep_shape(shape, axes))
    hit = g.apply("logical_or", g.apply("eq", x, out), g.apply("ne", x, x))
    hits = g.where(hit, g.const(1.0), g.const(0.0))
    count = reduce_sum(g, hits, axes, True)
    return (g.mul(g.div(hits, count), ct),)


# ----- shapes -----
def reshape(g: ArrayGraph, x: int, shape: tuple[int, ...]) -> int:
    shape = tuple(int(n) for n in shape)
    if g.shape(x) == shape:
        return x
    if g.op[x] == "reshape":  # reshape of a reshape: one reshape
        x = g.args[x][0]
        if g.shape(x) == shape:
            return x
    return g.emit("reshape", (x,), (shape,))


def transpose(g: ArrayGraph, x: int, perm: tuple[int, ...]) -> int:
    perm = tuple(int(p) for p in perm)
    if perm == tuple(range(len(perm))):
        return x
    return g.emit("transpose", (x,), (perm,))


def broadcast_to(g: ArrayGraph, x: int, shape: tuple[int, ...]) -> int:
    shape = tuple(int(n) for n in shape)
    if g.shape(x) == shape:
        return x
    return g.emit("broadcast_to", (x,), (shape,))


def unbroadcast(g: ArrayGraph, ct: int, shape: tuple[int, ...]) -> int:
    """Sum a cotangent of a broadcast result back to the operand's ``shape``."""
    have = g.shape(ct)
    if have == shape:
        return ct
    lead = len(have) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and have[lead + i] != 1)
    return reshape(g, reduce_sum(g, ct, axes, False), shape)


# ----- indexing -----
# An index is a template (a tuple of items) plus integer-array arguments:
# ("s", start, stop, step) a slice, ("i", k) an integer, ("n",) None, ("e",) Ellipsis,
# ("a", j) the j-th integer-array argument.


def _index_code(template: tuple, arrays: Sequence[str]) -> str:
    parts = []
    for item in template:
        tag = item[0]
        if tag == "s":
            parts.append(f"slice({item[1]!r}, {item[2]!r}, {item[3]!r})")
        elif tag == "i":
            parts.append(repr(item[1]))
        elif tag == "n":
            parts.append("None")
        elif tag == "e":
            parts.append("...")
        else:
            parts.append(arrays[item[1]])
    return "(" + "".join(p + ", " for p in parts) + ")"


def _is_basic(template: tuple) -> bool:
    return all(item[0] != "a" for item in template)


def index(g: ArrayGraph, x: int, template: tuple, arrays: Sequence[int] = ()) -> int:
    if not template:
        return x
    return g.emit("index", (x, *arrays), (template,))


class IndexLayout:
    """Where numpy puts the dims of ``x[index]``, and of the same index with a batch axis.

    With integer arrays in an index, numpy's integers count as arrays too (advanced indices).
    Advanced indices next to each other in the index put their broadcast dims ``S`` where they
    stand; separated ones (by a slice, ``None`` or ``...``, even an empty one) put ``S`` first.
    The ``batched_*`` methods give the batched op's numpy layout as a permutation: entry ``k``
    is the axis of the batch-first layout ``(B,) + per-example result`` at numpy's axis ``k``.

    >>> layout = IndexLayout((("s", None, None, None), ("a", 0)), ndim=2, rank=1)
    >>> layout.batched_rows()  # x_b[arange, :, y_b] has y's dim first, then the slice's
    (0, 2, 1)
    """

    def __init__(self, template: tuple, ndim: int, rank: int) -> None:
        has_arrays = any(item[0] == "a" for item in template)
        advanced = [k for k, item in enumerate(template)
                    if item[0] == "a" or (has_arrays and item[0] == "i")]
        consumed = sum(item[0] in "sia" for item in template)
        rest = ndim - consumed  # the Ellipsis's dims, or the implicit trailing slices
        self.contiguous = not advanced or advanced[-1] - advanced[0] == len(advanced) - 1
        self.first = advanced[0] if advanced else 0
        pre = 0  # basic dims of the items before the first advanced one
        n_basic = 0
        for k, item in enumerate(template):
            dims = {"s": 1, "n": 1, "e": rest}.get(item[0], 0)
            n_basic += dims
            if advanced and k < advanced[0]:
                pre += dims
        if not any(item[0] == "e" for item in template):
            n_basic += rest
        basic = [("b", k) for k in range(n_basic)]
        self.shared = [("s", k) for k in range(rank if advanced else 0)]
        if self.contiguous:
            self.pre, self.post = basic[:pre], basic[pre:]
        else:
            self.pre, self.post = [], basic
        # The per-example result, batch axis first.
        self.batch_first = ["B"] + self.pre + self.shared + self.post

    def _perm(self, labels: list) -> tuple[int, ...]:
        return tuple(self.batch_first.index(label) for label in labels)

    def batched_slice(self) -> tuple[int, ...]:
        """``x_b[(slice(None),) + index]`` (shared index arrays)."""
        if self.contiguous:
            return self._perm(self.batch_first)
        return self._perm(self.shared + ["B"] + self.post)

    def batched_rows(self) -> tuple[int, ...]:
        """``x_b[(arange_B,) + index]`` (batched index arrays: example b reads row b)."""
        if self.contiguous and self.first == 0:
            return self._perm(self.batch_first)
        return self._perm(["B"] + self.shared + self.pre + self.post)

    def batched_arrays(self) -> tuple[int, ...]:
        """``x[index]`` with batched index arrays and a shared ``x`` (no arange)."""
        if self.contiguous:
            return self._perm(self.pre + ["B"] + self.shared + self.post)
        return self._perm(["B"] + self.shared + self.post)


def _index_vjp(g: ArrayGraph, node: int, ct: int):
    x, *arrays = g.args[node]
    (template,) = g.params[node]
    return (index_add(g, ct, template, arrays, g.shape(x)),) + (None,) * len(arrays)


def index_add(g: ArrayGraph, ct: int, template: tuple, arrays: Sequence[int], shape) -> int:
    return g.emit("index_add", (ct, *arrays), (template, tuple(shape)))


def _index_add_vjp(g: ArrayGraph, node: int, ct: int):
    _, *arrays = g.args[node]
    template, _shape = g.params[node]
    return (index(g, ct, template, arrays),) + (None,) * len(arrays)


def cumsum(g: ArrayGraph, x: int, axis: int) -> int:
    """Running sums along ``axis``."""
    return g.emit("cumsum", (x,), (axis,))


def _cumsum_vjp(g: ArrayGraph, node: int, ct: int):
    """The adjoint of running sums is running sums from the other end: flip, cumsum, flip."""
    (axis,) = g.params[node]
    reverse = (("s", None, None, None),) * axis + (("s", None, None, -1),)
    return (index(g, cumsum(g, index(g, ct, reverse), axis), reverse),)


def concatenate(g: ArrayGraph, xs: Sequence[int], axis: int) -> int:
    if len(xs) == 1:
        return xs[0]
    return g.emit("concatenate", tuple(xs), (axis,))


def _concatenate_vjp(g: ArrayGraph, node: int, ct: int):
    (axis,) = g.params[node]
    out = []
    start = 0
    for x in g.args[node]:
        n = g.shape(x)[axis]
        template = (("s", None, None, None),) * axis + (("s", start, start + n, None),)
        out.append(index(g, ct, template))
        start += n
    return tuple(out)


def cast(g: ArrayGraph, x: int, dtype: str) -> int:
    """A conversion to bool or int (piecewise constant: no derivative)."""
    return g.emit("cast", (x,), (dtype,))


# ----- contractions -----
def contract(g: ArrayGraph, subscripts: str, a: int, b: int) -> int:
    """``np.einsum(subscripts, a, b)`` for two operands with explicit output letters."""
    try:
        inputs, out = subscripts.replace(" ", "").split("->")
        sa, sb = inputs.split(",")
    except ValueError:
        raise NotArrayLevel(f"einsum {subscripts!r}") from None
    shape_a, shape_b = g.shape(a), g.shape(b)
    if len(sa) != len(shape_a) or len(sb) != len(shape_b) or len(set(sa)) != len(sa) or \
            len(set(sb)) != len(sb) or len(set(out)) != len(out) or not set(out) <= set(sa + sb) or \
            "." in subscripts:
        raise NotArrayLevel(f"einsum {subscripts!r}")
    sizes: dict[str, int] = {}
    for letters, shape in ((sa, shape_a), (sb, shape_b)):
        for c, n in zip(letters, shape):
            if sizes.setdefault(c, n) != n:
                raise NotArrayLevel(f"einsum {subscripts!r}: sizes differ")
    # A letter in one operand only and not in the output is a plain sum: do it first, so every
    # letter of an operand appears in the other operand or the output (what the VJP needs).
    a, sa = _presum(g, a, sa, sb + out)
    b, sb = _presum(g, b, sb, sa + out)
    return g.emit("einsum", (a, b), (sa, sb, out))


def _presum(g: ArrayGraph, x: int, letters: str, others: str) -> tuple[int, str]:
    axes = tuple(i for i, c in enumerate(letters) if c not in others)
    if not axes:
        return x, letters
    return reduce_sum(g, x, axes), "".join(c for i, c in enumerate(letters) if i not in axes)


def _einsum_vjp(g: ArrayGraph, node: int, ct: int):
    a, b = g.args[node]
    sa, sb, out = g.params[node]
    return (contract(g, f"{out},{sb}->{sa}", ct, b), contract(g, f"{sa},{out}->{sb}", a, ct))


def _permute(expr: str, have: str, want: str) -> str:
    if have == want:
        return expr
    return f"_np.transpose({expr}, {tuple(have.index(c) for c in want)})"


def _matmul_form(sa: str, sb: str, c: str, a: str, b: str) -> tuple[str, str] | None:
    """``a @ b`` (with .T where needed) for a single contracted letter ``c``, or None."""
    if sa and sa[-1] == c and 1 <= len(sb) <= 2 and sb[0] == c:
        return f"({a} @ {b})", sa[:-1] + sb[1:]
    if len(sa) == 2 and sa[0] == c and 1 <= len(sb) <= 2 and sb[0] == c:
        return f"({a}.T @ {b})", sa[1:] + sb[1:]
    if sa and sa[-1] == c and len(sb) == 2 and sb[1] == c:
        return f"({a} @ {b}.T)", sa[:-1] + sb[:1]
    if len(sa) == 2 and sa[0] == c and len(sb) == 2 and sb[1] == c:
        return f"({a}.T @ {b}.T)", sa[1:] + sb[:1]
    return None


def _einsum_code(args: Sequence[str], params: tuple) -> str:
    a, b = args
    sa, sb, out = params
    contracted = [c for c in sa if c in sb and c not in out]
    batch = [c for c in sa if c in sb and c in out]
    if not contracted:  # a broadcast product: line both up with the output's letters
        return f"({_aligned(a, sa, out)} * {_aligned(b, sb, out)})"
    if not batch:
        if len(contracted) == 1:
            form = _matmul_form(sa, sb, contracted[0], a, b)
            if form is not None:
                return _permute(form[0], form[1], out)
        ia = tuple(sa.index(c) for c in contracted)
        ib = tuple(sb.index(c) for c in contracted)
        result = "".join(c for c in sa if c not in contracted) + \
            "".join(c for c in sb if c not in contracted)
        return _permute(f"_np.tensordot({a}, {b}, axes=({ia}, {ib}))", result, out)
    p = len(batch)
    if sa[:p] == sb[:p] == out[:p] == "".join(batch) and len(contracted) == 1 and \
            len(sa) == len(sb) == p + 2:
        form = _matmul_form(sa[p:], sb[p:], contracted[0], "A", "B")
        if form is not None and ".T" not in form[0]:
            return _permute(form[0].replace("A", a).replace("B", b), out[:p] + form[1], out)
    return f"_np.einsum('{sa},{sb}->{out}', {a}, {b})"


def _aligned(x: str, letters: str, out: str) -> str:
    order = "".join(c for c in out if c in letters)
    expr = _permute(x, letters, order)
    if len(order) == len(out) or not letters:  # scalars broadcast as they are
        return expr
    return expr + "[" + ", ".join(":" if c in letters else "None" for c in out) + "]"


# ----- the table -----
def _fmt_axes(axes: tuple[int, ...]) -> str:
    return repr(axes)


RULES.update({
    "sum": Rule(lambda a, p: f"_np.sum({a[0]}, axis={_fmt_axes(p[0])}, keepdims={p[1]})", _sum_vjp),
    "amax": Rule(lambda a, p: f"_np.amax({a[0]}, axis={_fmt_axes(p[0])}, keepdims={p[1]})",
                 _extreme_vjp),
    "amin": Rule(lambda a, p: f"_np.amin({a[0]}, axis={_fmt_axes(p[0])}, keepdims={p[1]})",
                 _extreme_vjp),
    "reshape": Rule(lambda a, p: f"_np.reshape({a[0]}, {p[0]!r})",
                    lambda g, n, ct: (reshape(g, ct, g.shape(g.args[n][0])),)),
    "transpose": Rule(lambda a, p: f"_np.transpose({a[0]}, {p[0]!r})",
                      lambda g, n, ct: (transpose(g, ct, tuple(np.argsort(g.params[n][0]))),)),
    "broadcast_to": Rule(lambda a, p: f"_np.broadcast_to({a[0]}, {p[0]!r})",
                         lambda g, n, ct: (unbroadcast(g, ct, g.shape(g.args[n][0])),)),
    "index": Rule(lambda a, p: f"{a[0]}[{_index_code(p[0], a[1:])}]", _index_vjp),
    "index_add": Rule(lambda a, p: f"_scatter_add({p[1]!r}, {_index_code(p[0], a[1:])}, {a[0]}, "
                                   f"{_is_basic(p[0])})", _index_add_vjp),
    "concatenate": Rule(lambda a, p: f"_np.concatenate(({''.join(x + ', ' for x in a)}), "
                                     f"axis={p[0]})", _concatenate_vjp),
    "einsum": Rule(_einsum_code, _einsum_vjp),
    "cumsum": Rule(lambda a, p: f"_np.cumsum({a[0]}, axis={p[0]})", _cumsum_vjp),
    "cast": Rule(lambda a, p: f"_np.asarray({a[0]}).astype({p[0]!r})", None, differentiable=False),
})

__all__ = ["IndexLayout", "broadcast_to", "cast", "code_of", "concatenate", "contract", "cumsum",
           "index",
           "index_add", "keep_shape", "normalize_axes", "reduce_extreme", "reduce_sum", "reshape",
           "transpose", "unbroadcast"]
