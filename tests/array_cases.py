"""The array-op catalogue shared by the op tests: each op written twice, in numpy (what a user
writes and workbench traces) and in torch (the oracle, run live in float64).

A case draws its input shapes and values from a generator seeded by its own name, so every
test of one case sees the same inputs, a failure replays exactly, and adding a case changes
no other case's inputs. Shapes are random (with size-1 axes and broadcasting where the op
allows them) and small, so today's element-level engine handles each case in milliseconds.

``KINKS`` holds non-smooth points (relu at 0, ties of maximum/max, clip at its bounds ...):
there the expected derivative is whatever torch computes live, never a guessed convention.

    >>> case = CASE_BY_NAME["sin"]
    >>> [x.shape == s for x, s in zip(case.inputs(), case.shapes(case.rng()))]
    [True]
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from conftest import require

import workbench as wb

torch = require("torch")
F = torch.nn.functional

Shapes = tuple[tuple[int, ...], ...]


# ----- input domains: where each op is smooth and well conditioned -----
def _sample(rng: np.random.Generator, shape: tuple[int, ...], domain: str) -> np.ndarray:
    if domain == "any":
        return rng.uniform(-2.0, 2.0, size=shape)
    if domain == "pos":
        return rng.uniform(0.3, 2.0, size=shape)
    if domain == "unit":
        return rng.uniform(-0.8, 0.8, size=shape)
    if domain == "nonzero":  # away from 0, both signs
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.4, 2.0, size=shape)
    raise ValueError(f"unknown domain {domain!r}")


# ----- shapes -----
def any_shape(rng: np.random.Generator, min_ndim: int = 0, max_ndim: int = 3) -> tuple[int, ...]:
    """A small shape: 0 to 3 axes of length 1 to 4 (1 to 3 for three axes)."""
    ndim = int(rng.integers(min_ndim, max_ndim + 1))
    top = 3 if ndim == 3 else 4
    return tuple(int(n) for n in rng.integers(1, top + 1, size=ndim))


def _random(draw):
    """Marks a shape drawer as random: such cases are also run at a second draw."""
    draw.random = True
    return draw


@_random
def broadcast_pair(rng: np.random.Generator) -> Shapes:
    """Two shapes that broadcast against each other, neither being the result: a size-1 axis
    in the first (and sometimes in the second) and missing leading axes in the second, e.g.
    (3, 1, 2) and (4, 1); the order of the two is random."""
    base = tuple(int(n) for n in rng.integers(2, 4, size=3))
    drop = int(rng.integers(1, 3))  # b lacks its first one or two axes
    kept = list(range(drop, 3))
    k = kept[int(rng.integers(len(kept)))]
    a = [1 if i == k else n for i, n in enumerate(base)]
    b = [1 if (i != k and rng.integers(2)) else n for i, n in enumerate(base)][drop:]
    return (tuple(a), tuple(b)) if rng.integers(2) else (tuple(b), tuple(a))


def fixed(*shapes: tuple[int, ...]) -> Callable[[np.random.Generator], Shapes]:
    return lambda rng: shapes


def sized(pattern: str) -> Callable[[np.random.Generator], Shapes]:
    """Shapes from a pattern like ``"mn,n"``: each letter a random length 1 to 4 (the same
    letter the same length), so matrix products meet size-1 axes too."""
    def draw(rng: np.random.Generator) -> Shapes:
        letters = sorted(set(pattern) - {","})
        size = {c: int(rng.integers(1, 5)) for c in letters}
        if "b" in size:
            size["b"] = 2  # keep batched products small
        return tuple(tuple(size[c] for c in part) for part in pattern.split(","))
    return _random(draw)


def unary(min_ndim: int = 0) -> Callable[[np.random.Generator], Shapes]:
    return _random(lambda rng: (any_shape(rng, min_ndim),))


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


@dataclass(frozen=True)
class OpCase:
    """One array op: ``numpy(*arrays)`` and ``torch(*tensors)`` compute the same array."""

    name: str
    numpy: Callable
    torch: Callable
    shapes: Callable[[np.random.Generator], Shapes]
    domain: str | tuple[str, ...] = "any"
    # test kind ("grad", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "grad of grad", "compiled",
    # "vmap", "export_numpy", "export_c", or "*" for all) -> (reason, exception type) of a strict
    # xfail: a known difference from torch, or a gap, of workbench on main.
    xfail: dict = field(default_factory=dict)

    def rng(self, salt: str = "") -> np.random.Generator:
        return np.random.default_rng(_seed(self.name + salt))

    def inputs(self) -> list[np.ndarray]:
        rng = self.rng()
        shapes = self.shapes(rng)
        domains = self.domain if isinstance(self.domain, tuple) else (self.domain,) * len(shapes)
        return [_sample(rng, s, d) for s, d in zip(shapes, domains)]

    @property
    def arity(self) -> int:
        return len(self.shapes(self.rng()))

    def weights(self) -> np.ndarray:
        """The fixed random R of the scalar loss sum(op(inputs) * R)."""
        with np.errstate(all="ignore"):  # kink points include log(0), sqrt(-1) ...
            out = np.shape(self.numpy(*self.inputs()))
        return self.rng("weights").standard_normal(out)


@dataclass(frozen=True)
class KinkCase(OpCase):
    """An op at given points that sit on its kinks (``points`` replace the random inputs)."""

    points: tuple = ()

    def inputs(self) -> list[np.ndarray]:
        return [np.array(p, dtype=np.float64) for p in self.points]

    @property
    def arity(self) -> int:
        return len(self.points)


def T(array) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float64))


def _zeros(x):
    return torch.zeros_like(x)


UNSUPPORTED = wb.UnsupportedOperationError
EINSUM_MISSING = ("np.einsum is not supported by tracing on main (UnsupportedOperationError); "
                  "issue 12 asks for it", UNSUPPORTED)

TAKE_MISSING = ("np.take is not supported by tracing on main (UnsupportedOperationError); "
                "x[:, idx] works", UNSUPPORTED)
TENSORDOT_MISSING = ("np.tensordot is not supported by tracing on main (UnsupportedOperationError)",
                     UNSUPPORTED)
CLIP_EQUAL_BOUNDS = (
    "np.clip(x, lo, hi) with lo == hi and x < lo: torch gives the gradient to hi (d/dlo = 0, "
    "d/dhi = 1: torch.clamp's upper bound wins), workbench gives it to lo (d/dlo = 1, d/dhi = 0)",
    AssertionError)
# wb.jacrev / wb.jacfwd disagree with workbench's own wb.vjp / wb.jvp at basis vectors there.
JACOBIAN_STRUCTURAL_ZERO = (
    "Jacobian entries beside an infinite or nan partial: torch's jacrev/jacfwd (stacked VJPs/JVPs) "
    "give nan (a zero cotangent/tangent times the partial, IEEE), and so do workbench's own "
    "wb.vjp/wb.jvp at the same basis vectors; wb.jacrev/wb.jacfwd give a structural 0",
    AssertionError)
# At array level jacrev is one reverse pass batched over unit cotangents: IEEE as torch's.
JACOBIANS_XFAIL = {"jacfwd": JACOBIAN_STRUCTURAL_ZERO}
BOOL_MASK = np.array([[True, False, True, True], [False, False, True, False],
                      [True, True, False, True]])
CE_LABELS = np.array([2, 0, 3, 3, 1])
GATHER_ROWS = np.array([1, 1, 0, 2, 1])
GATHER_2D = np.array([[0, 2], [2, 2], [1, 0]])


def _softmax_np(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _logsumexp_np(z, axis=-1, keepdims=False):
    m = np.max(z, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def _logsumexp_all_np(z):
    m = np.max(z)
    return m + np.log(np.sum(np.exp(z - m)))


def _cross_entropy_np(z):
    rows = np.arange(z.shape[0])
    return np.mean(_logsumexp_np(z, axis=1) - z[rows, CE_LABELS])


def _setitem_np(x):
    y = x.copy()
    y[0] = np.sin(x[-1])
    y[[1, 0], [2, 0]] += x[0, 0]  # no repeated index: torch leaves that case undefined
    return y


def _setitem_torch(x):
    y = x.clone()
    y[0] = torch.sin(x[-1])
    y[[1, 0], [2, 0]] += x[0, 0]
    return y


def _setitem_zeros_np(x):
    y = np.zeros_like(x)
    y[:, 1:] = x[:, :-1] ** 2
    return y


def _setitem_zeros_torch(x):
    y = torch.zeros_like(x)
    y[:, 1:] = x[:, :-1] ** 2
    return y


def _add_at_np(x):
    y = np.zeros(4)
    np.add.at(y, [0, 0, 3], x)
    return y


def _mlp_np(w1, b1, x):
    return np.tanh(x @ w1 + b1)


CASES: list[OpCase] = [
    # ----- elementwise unary -----
    OpCase("sin", np.sin, torch.sin, unary()),
    OpCase("cos", np.cos, torch.cos, unary()),
    OpCase("tan", np.tan, torch.tan, unary(), "unit"),
    OpCase("exp", np.exp, torch.exp, unary()),
    OpCase("log", np.log, torch.log, unary(), "pos"),
    OpCase("sqrt", np.sqrt, torch.sqrt, unary(), "pos"),
    OpCase("tanh", np.tanh, torch.tanh, unary()),
    OpCase("abs", np.abs, torch.abs, unary(), "nonzero"),
    OpCase("fabs", np.fabs, torch.abs, unary(), "nonzero"),
    OpCase("negative", np.negative, torch.neg, unary()),
    OpCase("relu np.maximum(x, 0)", lambda x: np.maximum(x, 0), torch.relu, unary(), "nonzero"),
    OpCase("relu wb.relu", wb.relu, torch.relu, unary(), "nonzero"),
    OpCase("sigmoid 1/(1+exp(-x))", lambda x: 1 / (1 + np.exp(-x)), torch.sigmoid, unary()),
    OpCase("sigmoid wb.sigmoid", wb.sigmoid, torch.sigmoid, unary()),
    OpCase("softplus wb.softplus", wb.softplus, F.softplus, unary()),
    OpCase("square", np.square, torch.square, unary()),
    OpCase("x**2", lambda x: x ** 2, lambda x: x ** 2, unary()),
    OpCase("x**3", lambda x: x ** 3, lambda x: x ** 3, unary()),
    OpCase("x**2.5", lambda x: x ** 2.5, lambda x: x ** 2.5, unary(), "pos"),
    OpCase("x**-1.5", lambda x: x ** -1.5, lambda x: x ** -1.5, unary(), "pos"),
    OpCase("np.power(x, 0.5)", lambda x: np.power(x, 0.5), lambda x: torch.pow(x, 0.5), unary(), "pos"),
    OpCase("reciprocal", np.reciprocal, torch.reciprocal, unary(), "nonzero"),
    OpCase("cbrt", np.cbrt, lambda x: x ** (1 / 3), unary(), "pos"),
    OpCase("log1p", np.log1p, torch.log1p, unary(), "unit"),
    OpCase("expm1", np.expm1, torch.expm1, unary()),
    OpCase("log2", np.log2, torch.log2, unary(), "pos"),
    OpCase("log10", np.log10, torch.log10, unary(), "pos"),
    OpCase("arctan", np.arctan, torch.atan, unary()),
    OpCase("arcsin", np.arcsin, torch.asin, unary(), "unit"),
    OpCase("arccos", np.arccos, torch.acos, unary(), "unit"),
    OpCase("arctanh", np.arctanh, torch.atanh, unary(), "unit"),
    OpCase("arcsinh", np.arcsinh, torch.asinh, unary()),
    OpCase("sinh", np.sinh, torch.sinh, unary()),
    OpCase("cosh", np.cosh, torch.cosh, unary()),
    OpCase("python scalars", lambda x: (2.0 - x) * 3.0 / (x * x + 1) + 1.5 ** x + 2 / (x + 3),
           lambda x: (2.0 - x) * 3.0 / (x * x + 1) + 1.5 ** x + 2 / (x + 3), unary()),
    OpCase("clip", lambda x: np.clip(x, -0.5, 0.7), lambda x: torch.clamp(x, -0.5, 0.7), unary(1)),
    OpCase("clip upper only", lambda x: np.clip(x, None, 0.5), lambda x: torch.clamp(x, max=0.5),
           unary(1)),
    OpCase("clip array bounds", lambda x, lo, hi: np.clip(x, lo, hi),
           lambda x, lo, hi: torch.clamp(x, lo, hi), fixed((3, 4), (4,), (3, 1)),
           ("any", "unit", "pos")),
    OpCase("where third-argument mask", lambda a, b, c: np.where(c > 0, a, b * b),
           lambda a, b, c: torch.where(c > 0, a, b * b), fixed((2, 1), (3,), (2, 3)),
           ("any", "any", "nonzero")),
    OpCase("where comparison", lambda x: np.where(x > 0.3, np.sin(x), x ** 2),
           lambda x: torch.where(x > 0.3, torch.sin(x), x ** 2), unary(1)),
    # ----- reductions -----
    OpCase("sum", np.sum, torch.sum, unary(1)),
    OpCase("sum axis=0", lambda x: np.sum(x, axis=0), lambda x: x.sum(0), unary(2)),
    OpCase("sum axis=-1 keepdims", lambda x: x.sum(axis=-1, keepdims=True),
           lambda x: x.sum(-1, keepdim=True), unary(1)),
    OpCase("sum axis=(0, 2)", lambda x: np.sum(x, axis=(0, 2)), lambda x: x.sum((0, 2)), unary(3)),
    OpCase("mean", np.mean, torch.mean, unary(1)),
    OpCase("mean axis=(-1, -2)", lambda x: np.mean(x, axis=(-1, -2)), lambda x: x.mean((-1, -2)),
           unary(2)),
    OpCase("norm", np.linalg.norm, torch.linalg.norm, unary(1), "nonzero"),
    OpCase("norm axis=0", lambda x: np.linalg.norm(x, axis=0), lambda x: torch.linalg.norm(x, dim=0),
           unary(2), "nonzero"),
    OpCase("mean axis=1 keepdims", lambda x: np.mean(x, axis=1, keepdims=True),
           lambda x: x.mean(1, keepdim=True), unary(2)),
    OpCase("max", np.max, torch.amax, unary(1)),
    OpCase("max axis=0", lambda x: np.max(x, axis=0), lambda x: torch.amax(x, 0), unary(2)),
    OpCase("max axis=-1 keepdims", lambda x: x.max(axis=-1, keepdims=True),
           lambda x: torch.amax(x, -1, keepdim=True), unary(1)),
    OpCase("min axis=1", lambda x: np.min(x, axis=1), lambda x: torch.amin(x, 1), unary(2)),
    OpCase("amin", np.amin, torch.amin, unary(1)),
    OpCase("logsumexp all", _logsumexp_all_np, lambda x: torch.logsumexp(x.reshape(-1), 0), unary(1)),
    OpCase("logsumexp axis=-1", _logsumexp_np, lambda x: torch.logsumexp(x, -1), unary(1)),
    OpCase("logsumexp axis=0 keepdims", lambda x: _logsumexp_np(x, axis=0, keepdims=True),
           lambda x: torch.logsumexp(x, 0, keepdim=True), unary(2)),
    OpCase("prod", np.prod, torch.prod, unary(1), "nonzero"),
    OpCase("var axis=0", lambda x: np.var(x, axis=0), lambda x: x.var(0, correction=0), unary(2)),
    OpCase("std", np.std, lambda x: x.std(correction=0), unary(1)),
    OpCase("cumsum axis=0", lambda x: np.cumsum(x, axis=0), lambda x: torch.cumsum(x, 0), unary(1)),
    # ----- matrix products -----
    OpCase("matmul mat-vec", lambda a, b: a @ b, lambda a, b: a @ b, sized("mn,n")),
    OpCase("matmul vec-mat", lambda a, b: a @ b, lambda a, b: a @ b, sized("n,nk")),
    OpCase("matmul mat-mat", np.matmul, torch.matmul, sized("mn,nk")),
    OpCase("matmul vec-vec", lambda a, b: a @ b, lambda a, b: a @ b, sized("n,n")),
    OpCase("matmul batched", lambda a, b: a @ b, lambda a, b: a @ b, sized("bmn,bnk")),
    OpCase("matmul batch broadcast", lambda a, b: a @ b, lambda a, b: a @ b, sized("bmn,nk")),
    OpCase("matmul batched mat-vec", lambda a, b: a @ b, lambda a, b: a @ b, sized("bmn,n")),
    OpCase("matmul size-1 axes", lambda a, b: a @ b, lambda a, b: a @ b, fixed((1, 3), (3, 1))),
    OpCase("dot mat-vec", np.dot, torch.mv, sized("mn,n")),
    OpCase("dot mat-mat", np.dot, torch.mm, sized("mn,nk")),
    OpCase("dot vec-vec", lambda a, b: a.dot(b), torch.dot, sized("n,n")),
    OpCase("inner", np.inner, torch.inner, sized("mn,kn")),
    OpCase("vdot", np.vdot, lambda a, b: torch.dot(a.reshape(-1), b.reshape(-1)), fixed((2, 3), (2, 3))),
    OpCase("outer", np.outer, torch.outer, sized("m,n")),
    OpCase("einsum ij,j->i", lambda a, b: np.einsum("ij,j->i", a, b),
           lambda a, b: torch.einsum("ij,j->i", a, b), sized("mn,n"), xfail={"export_c": EINSUM_MISSING}),
    OpCase("einsum bij,bjk->bik", lambda a, b: np.einsum("bij,bjk->bik", a, b),
           lambda a, b: torch.einsum("bij,bjk->bik", a, b), sized("bmn,bnk"),
           xfail={"export_c": EINSUM_MISSING}),
    OpCase("einsum i,i->", lambda a, b: np.einsum("i,i->", a, b),
           lambda a, b: torch.einsum("i,i->", a, b), sized("n,n"), xfail={"export_c": EINSUM_MISSING}),
    OpCase("einsum ij,ik->jk", lambda a, b: np.einsum("ij,ik->jk", a, b),
           lambda a, b: torch.einsum("ij,ik->jk", a, b), sized("nm,nk"), xfail={"export_c": EINSUM_MISSING}),
    OpCase("tensordot axes=1", lambda a, b: np.tensordot(a, b, axes=1),
           lambda a, b: torch.tensordot(a, b, dims=1), sized("mn,nk"), xfail={"export_c": TENSORDOT_MISSING}),
    # ----- shapes -----
    OpCase("reshape", lambda x: x.reshape(3, 4), lambda x: x.reshape(3, 4), fixed((2, 3, 2))),
    OpCase("reshape -1", lambda x: np.reshape(x, (-1, 2)), lambda x: x.reshape(-1, 2), fixed((3, 2, 2))),
    OpCase("ravel", np.ravel, lambda x: x.reshape(-1), unary(1)),
    OpCase(".T", lambda x: x.T, lambda x: x.permute(*reversed(range(x.ndim))), unary(1)),
    OpCase("transpose axes", lambda x: np.transpose(x, (1, 2, 0)), lambda x: x.permute(1, 2, 0),
           unary(3)),
    OpCase("swapaxes", lambda x: np.swapaxes(x, 0, -1), lambda x: torch.swapaxes(x, 0, -1), unary(2)),
    OpCase("moveaxis", lambda x: np.moveaxis(x, 0, -1), lambda x: torch.movedim(x, 0, -1), unary(3)),
    OpCase("broadcast_to", lambda x: np.broadcast_to(x, (2, 3, 4)),
           lambda x: torch.broadcast_to(x, (2, 3, 4)), fixed((3, 1))),
    OpCase("broadcast_to new axes", lambda x: np.broadcast_to(x, (2, 3, 4)),
           lambda x: torch.broadcast_to(x, (2, 3, 4)), fixed((4,))),
    OpCase("expand_dims", lambda x: np.expand_dims(x, 0), lambda x: x.unsqueeze(0), unary()),
    OpCase("expand_dims -1", lambda x: np.expand_dims(x, -1), lambda x: x.unsqueeze(-1), unary(1)),
    OpCase("None indexing", lambda x: x[None, :, None], lambda x: x[None, :, None], unary(1, )),
    OpCase("squeeze", np.squeeze, torch.squeeze, fixed((1, 3, 1, 2))),
    OpCase("squeeze axis", lambda x: np.squeeze(x, axis=2), lambda x: x.squeeze(2), fixed((2, 3, 1))),
    OpCase("tile", lambda x: np.tile(x, (2, 1)), lambda x: torch.tile(x, (2, 1)), unary(1)),
    OpCase("repeat", lambda x: np.repeat(x, 2, axis=0), lambda x: torch.repeat_interleave(x, 2, 0),
           unary(1)),
    OpCase("roll", lambda x: np.roll(x, 1, axis=-1), lambda x: torch.roll(x, 1, -1), unary(1)),
    OpCase("split", lambda x: np.split(x, 2, axis=0)[1] * np.split(x, 2, axis=0)[0],
           lambda x: torch.chunk(x, 2, 0)[1] * torch.chunk(x, 2, 0)[0], fixed((4, 3))),
    OpCase("diagonal", np.diagonal, lambda x: torch.diagonal(x), fixed((3, 4))),
    OpCase("trace", np.trace, torch.trace, fixed((3, 3))),
    OpCase("flip", lambda x: np.flip(x, axis=0), lambda x: torch.flip(x, (0,)), unary(1)),
    # ----- indexing -----
    OpCase("slice", lambda x: x[1:, :-1], lambda x: x[1:, :-1], fixed((3, 4))),
    OpCase("slice step", lambda x: x[::2, 1:4:2], lambda x: x[::2, 1:4:2], fixed((3, 4))),
    OpCase("integer index", lambda x: x[1], lambda x: x[1], fixed((3, 4))),
    OpCase("ellipsis", lambda x: x[..., -1], lambda x: x[..., -1], fixed((2, 3, 2))),
    OpCase("mixed int slice", lambda x: x[-1, 1:], lambda x: x[-1, 1:], fixed((3, 4))),
    OpCase("negative step", lambda x: x[::-1], lambda x: torch.flip(x, (0,)), fixed((5,))),
    OpCase("negative step 2", lambda x: x[::-2, 1:], lambda x: torch.flip(x, (0,))[::2, 1:],
           fixed((5, 3))),
    OpCase("negative step bounded", lambda x: x[3:0:-1], lambda x: torch.flip(x[1:4], (0,)),
           fixed((5,))),
    OpCase("gather repeated", lambda x: x[GATHER_ROWS], lambda x: x[torch.from_numpy(GATHER_ROWS)],
           fixed((3,))),
    OpCase("gather rows repeated", lambda x: x[GATHER_ROWS], lambda x: x[torch.from_numpy(GATHER_ROWS)],
           fixed((3, 2))),
    OpCase("gather columns repeated", lambda x: x[:, [1, 1, 0]], lambda x: x[:, [1, 1, 0]],
           fixed((2, 3))),
    OpCase("gather pairs repeated", lambda x: x[[1, 1, 0], [0, 2, 2]],
           lambda x: x[[1, 1, 0], [0, 2, 2]], fixed((2, 3))),
    OpCase("gather 2-d index", lambda x: x[GATHER_2D], lambda x: x[torch.from_numpy(GATHER_2D)],
           fixed((3,))),
    OpCase("np.take repeated", lambda x: np.take(x, [2, 0, 2], axis=1),
           lambda x: torch.index_select(x, 1, torch.tensor([2, 0, 2])), fixed((2, 3)),
           xfail={"*": TAKE_MISSING}),
    OpCase("gather negative indices", lambda x: x[[-1, 0, -1]], lambda x: x[[-1, 0, -1]], fixed((4,))),
    OpCase("slice past the end", lambda x: x[1:10], lambda x: x[1:10], fixed((3, 2))),
    OpCase("setitem on a copy", _setitem_np, _setitem_torch, fixed((3, 3))),
    OpCase("setitem into np.zeros_like", _setitem_zeros_np, _setitem_zeros_torch, fixed((2, 4)),
           xfail={"*": ("writing traced values into np.zeros_like(x) raises TracedConversionError "
                        "on main (zeros_like gives a plain array); torch accepts the same code",
                        wb.TracedConversionError)}),
    OpCase("np.add.at repeated", _add_at_np,
           lambda x: torch.zeros(4, dtype=x.dtype).index_add(0, torch.tensor([0, 0, 3]), x),
           fixed((3,)), xfail={"*": ("np.add.at (scatter-add) is not supported by tracing on main",
                                     UNSUPPORTED)}),
    OpCase("boolean mask constant", lambda x: x[BOOL_MASK], lambda x: x[torch.from_numpy(BOOL_MASK)],
           fixed((3, 4))),
    # ----- joining -----
    OpCase("concatenate axis=0", lambda a, b: np.concatenate([a, b], axis=0),
           lambda a, b: torch.cat([a, b], 0), fixed((2, 3), (1, 3))),
    OpCase("concatenate axis=-1", lambda a, b: np.concatenate([a, b, a], axis=-1),
           lambda a, b: torch.cat([a, b, a], -1), fixed((2, 1), (2, 3))),
    OpCase("stack axis=0", lambda a, b: np.stack([a, b]), lambda a, b: torch.stack([a, b]),
           fixed((2, 3), (2, 3))),
    OpCase("stack axis=-1", lambda a, b: np.stack([a, b, a], axis=-1),
           lambda a, b: torch.stack([a, b, a], -1), fixed((3,), (3,))),
    OpCase("stack 0-d", lambda a, b: np.stack([a, b, a * b]), lambda a, b: torch.stack([a, b, a * b]),
           fixed((), ())),
    OpCase("hstack", lambda a, b: np.hstack([a, b]), lambda a, b: torch.hstack([a, b]),
           fixed((2,), (3,))),
    OpCase("vstack", lambda a, b: np.vstack([a, b]), lambda a, b: torch.vstack([a, b]),
           fixed((3,), (2, 3))),
    # ----- compositions -----
    OpCase("softmax", _softmax_np, lambda z: torch.softmax(z, -1), unary(1)),
    OpCase("softmax axis=0", lambda z: _softmax_np(z, axis=0), lambda z: torch.softmax(z, 0), unary(2)),
    OpCase("log_softmax", lambda z: z - _logsumexp_np(z, keepdims=True),
           lambda z: F.log_softmax(z, -1), unary(1)),
    OpCase("softmax cross-entropy", _cross_entropy_np,
           lambda z: F.cross_entropy(z, torch.from_numpy(CE_LABELS)), fixed((5, 4))),
    OpCase("dense tanh layer", _mlp_np, lambda w1, b1, x: torch.tanh(x @ w1 + b1),
           sized("nk,k,mn")),
]


def _binary(name: str, np_fn: Callable, torch_fn: Callable, domain=("any", "any")) -> list[OpCase]:
    """A binary elementwise op at equal shapes, at mutually broadcasting shapes with size-1 axes,
    and with a 0-d operand."""
    def zero_d(rng):
        s = any_shape(rng, 1)
        return (s, ()) if rng.integers(2) else ((), s)
    return [OpCase(f"{name} same shape", np_fn, torch_fn, _random(lambda rng: (any_shape(rng),) * 2),
                   domain),
            OpCase(f"{name} broadcast", np_fn, torch_fn, broadcast_pair, domain),
            OpCase(f"{name} 0-d operand", np_fn, torch_fn, _random(zero_d), domain)]


CASES += [
    *_binary("add", np.add, torch.add),
    *_binary("subtract", lambda a, b: a - b, lambda a, b: a - b),
    *_binary("multiply", lambda a, b: a * b, lambda a, b: a * b),
    *_binary("divide", lambda a, b: a / b, lambda a, b: a / b, ("any", "nonzero")),
    *_binary("power", lambda a, b: a ** b, lambda a, b: a ** b, ("pos", "any")),
    *_binary("maximum", np.maximum, torch.maximum),
    *_binary("minimum", np.minimum, torch.minimum),
    *_binary("where a > b", lambda a, b: np.where(a > b, a * b, a - b),
             lambda a, b: torch.where(a > b, a * b, a - b)),
    *_binary("arctan2", np.arctan2, torch.atan2, ("any", "nonzero")),
    *_binary("hypot", np.hypot, torch.hypot, ("nonzero", "nonzero")),
    *_binary("logaddexp", np.logaddexp, torch.logaddexp),
]


# Random-shaped cases once more at another draw of shapes (the name seeds the generator).
CASES += [dataclasses.replace(c, name=f"{c.name} (draw 2)") for c in CASES
          if getattr(c.shapes, "random", False)]


# ----- kinks: torch's conventions, computed live -----
# Where workbench differs from torch today (strict xfails: each names the difference).
WHERE_NAN_JVP = (
    "np.where(x > 0, sqrt(x), 0) at x <= 0: torch's JVP selects the taken branch's tangent (0); "
    "workbench's is nan (the zero mask times sqrt's nan/inf tangent)", AssertionError)
POWER_BASE_0_HESSIAN = (
    "second derivatives of a**b at a = 0: torch masks d2/(db da) to 0 where workbench gives nan "
    "(at 0**2 and 0**0.5), and torch's rows of the element with an infinite second derivative "
    "(0**0.5) are all nan where workbench has structural zeros", AssertionError)
POWER_0_0_HESSIAN = (
    "0**0: torch's second derivatives d2/da2, d2/(da db), d2/db2 are 0 (masked); workbench "
    "gives nan", AssertionError)
DIVIDE_BY_0_JVP = (
    "a/b at b = 0, a = 1: torch's JVP (t_a - out*t_b)/b gives -inf where workbench's "
    "t_a/b - a*t_b/b**2 gives inf - inf = nan", AssertionError)
DIVIDE_BY_0_HESSIAN = (
    "a/b at b = 0: torch's Hessian rows of those elements are nan (IEEE: a zero tangent times "
    "an infinite partial, even in d2/da2, which is 0 analytically); workbench gives 0 there",
    AssertionError)

KINKS: list[KinkCase] = [
    KinkCase("relu wb.relu at 0", wb.relu, torch.relu, None, points=([0.0, -1.0, 0.0, 2.0],)),
    KinkCase("relu np.maximum(x, 0) at 0", lambda x: np.maximum(x, 0),
             lambda x: torch.maximum(x, _zeros(x)), None, points=([0.0, -1.0, 0.0, 2.0],)),
    KinkCase("relu np.clip(x, 0, None) at 0", lambda x: np.clip(x, 0, None),
             lambda x: torch.clamp(x, min=0), None, points=([0.0, -1.0, 0.0, 2.0],)),
    KinkCase("abs at 0", np.abs, torch.abs, None, points=([0.0, -1.5, 0.0, 0.5],)),
    KinkCase("maximum ties", np.maximum, torch.maximum, None,
             points=([[1.0, 2.0], [-1.0, 0.0]], [[1.0, 0.5], [-1.0, 0.0]])),
    KinkCase("minimum ties", np.minimum, torch.minimum, None,
             points=([[1.0, 2.0], [-1.0, 0.0]], [[1.0, 0.5], [-1.0, 0.0]])),
    KinkCase("maximum ties broadcast", np.maximum, torch.maximum, None,
             points=([[1.0, 2.0, 1.0], [0.0, 1.0, 3.0]], [1.0])),
    KinkCase("max ties", np.max, torch.amax, None, points=([[1.0, 3.0, 3.0], [3.0, -1.0, 0.0]],)),
    KinkCase("max axis=1 ties", lambda x: np.max(x, axis=1), lambda x: torch.amax(x, 1), None,
             points=([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, -1.0, 0.5]],)),
    KinkCase("min axis=0 ties keepdims", lambda x: np.min(x, axis=0, keepdims=True),
             lambda x: torch.amin(x, 0, keepdim=True), None,
             points=([[1.0, 3.0, -2.0], [1.0, -1.0, -2.0], [1.0, 0.0, 0.5]],)),
    KinkCase("clip at bounds", lambda x: np.clip(x, -0.5, 0.5), lambda x: torch.clamp(x, -0.5, 0.5),
             None, points=([-0.5, 0.5, 0.0, 1.0, -1.0],)),
    KinkCase("where at boundary", lambda x: np.where(x > 0, x ** 2, -x),
             lambda x: torch.where(x > 0, x ** 2, -x), None, points=([0.0, 1.0, -1.0],)),
    KinkCase("where masks a nan branch", lambda x: np.where(x > 0, np.sqrt(x), 0.0),
             lambda x: torch.where(x > 0, torch.sqrt(x), 0.0), None, points=([-1.0, 0.0, 4.0],),
             xfail={**JACOBIANS_XFAIL, "jvp": WHERE_NAN_JVP}),
    KinkCase("sqrt at 0", np.sqrt, torch.sqrt, None, points=([0.0, 1.0],)),
    KinkCase("x**3 and x**2 at 0", lambda x: x ** 3 + x ** 2, lambda x: x ** 3 + x ** 2, None,
             points=([0.0, 1.0],)),
    KinkCase("power at base 0", lambda a, b: a ** b, lambda a, b: a ** b, None,
             points=([0.0, 0.0, 1.0, 2.0], [2.0, 0.5, 0.0, 3.0]),
             xfail={**JACOBIANS_XFAIL, "hessian": POWER_BASE_0_HESSIAN}),
    KinkCase("power base 0 exponent 0", lambda a, b: a ** b, lambda a, b: a ** b, None,
             points=([0.0, 0.0], [0.0, 1.0]), xfail={"hessian": POWER_0_0_HESSIAN}),
    KinkCase("log at 0", np.log, torch.log, None, points=([0.0, 1.0],)),
    KinkCase("divide by 0", lambda a, b: a / b, lambda a, b: a / b, None,
             points=([1.0, 0.0, -1.0], [0.0, 0.0, 2.0]),
             xfail={**JACOBIANS_XFAIL, "jvp": DIVIDE_BY_0_JVP, "hessian": DIVIDE_BY_0_HESSIAN}),
    KinkCase("norm at 0", np.linalg.norm, torch.linalg.norm, None, points=([[0.0, 0.0], [0.0, 0.0]],)),
    KinkCase("std of a constant", np.std, lambda x: x.std(correction=0), None,
             points=([1.5, 1.5, 1.5],)),
    KinkCase("clip array bounds at ties", lambda x, lo, hi: np.clip(x, lo, hi),
             lambda x, lo, hi: torch.clamp(x, lo, hi), None,
             points=([-1.0, 0.0, 1.0, 2.0], [-1.0, 0.5, 0.0, 0.0], [0.0, 0.5, 1.0, 1.0]),
             xfail={kind: CLIP_EQUAL_BOUNDS for kind in (
                 "grad", "vjp", "jacrev", "compiled", "vmap", "export_numpy", "export_c")}),
    KinkCase("logsumexp max ties", _logsumexp_np, lambda x: torch.logsumexp(x, -1), None,
             points=([[1.0, 1.0, 0.0], [2.0, 2.0, 2.0]],)),
    KinkCase("softmax max ties", _softmax_np, lambda z: torch.softmax(z, -1), None,
             points=([[1.0, 1.0, 0.0], [2.0, 2.0, 2.0]],)),
]

CASE_BY_NAME = {c.name: c for c in CASES + KINKS}
assert len(CASE_BY_NAME) == len(CASES) + len(KINKS), "case names must be unique"


def to_torch(arrays) -> list[torch.Tensor]:
    return [T(a) for a in arrays]


def params(cases, kind: str) -> list:
    """pytest params of ``cases`` for one test kind, with each case's strict xfail for it."""
    out = []
    for case in cases:
        reason = case.xfail.get(kind) or case.xfail.get("*")
        marks = []
        if reason is not None:
            text, raises = reason
            marks.append(pytest.mark.xfail(strict=True, raises=raises, reason=text))
        out.append(pytest.param(case, id=case.name, marks=marks))
    return out
