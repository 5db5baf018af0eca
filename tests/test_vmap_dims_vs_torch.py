"""vmap's ``in_dims`` / ``out_dims`` forms, alone and under other transforms, against
torch.func.vmap run live (float64).

Each case is written once against a namespace pair ``(xp, fx)``: ``(np, wb)`` is what a
workbench user writes, ``(torch, torch.func)`` is the oracle. Both run on the same random
values (numpy arrays for workbench, tensors for torch); results are compared as pytrees
(type, keys, shapes, values).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from array_cases import CASES, params
from conftest import require

import workbench as wb

torch = require("torch")
tfunc = require("torch.func")


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def to_torch(tree):
    if isinstance(tree, dict):
        return {k: to_torch(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(to_torch(v) for v in tree)
    return torch.from_numpy(np.array(tree, dtype=np.float64))


def assert_same(ours, theirs, where: str = "result") -> None:
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)), f"{where}: {type(ours).__name__}, torch gives a sequence"
        assert type(ours) is type(theirs), f"{where}: {type(ours).__name__} vs {type(theirs).__name__}"
        assert len(ours) == len(theirs), f"{where}: {len(ours)} items, torch gives {len(theirs)}"
        for k, (o, t) in enumerate(zip(ours, theirs)):
            assert_same(o, t, f"{where}[{k}]")
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and ours.keys() == theirs.keys(), f"{where}: keys differ"
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{where}[{key!r}]")
    else:
        want = theirs.detach().numpy(force=True)
        got = np.asarray(ours, dtype=np.float64)
        assert got.shape == want.shape, f"{where}: shape {got.shape}, torch gives {want.shape}"
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10, err_msg=where)


# ----- the cases: name -> (build(xp, fx) -> function, argument shapes as a pytree) -----
def _f2(xp):
    """An elementwise-and-reduction function of two arrays of the same per-example shape."""
    return lambda x, y: xp.sin(x) * y + (x * x).sum(0)


def _layer(xp):
    return lambda p, x: xp.tanh(p["w"] @ x + p["b"])


def _loss(xp):
    return lambda w, x, t: ((xp.tanh(x @ w) - t) ** 2).sum()


ALONE = {
    # ----- in_dims -----
    "in_dims=0 default": (lambda xp, fx: fx.vmap(_f2(xp)), ((4, 3), (4, 3))),
    "in_dims=1": (lambda xp, fx: fx.vmap(_f2(xp), in_dims=1), ((3, 4), (3, 4))),
    "in_dims=-1": (lambda xp, fx: fx.vmap(_f2(xp), in_dims=-1), ((3, 2, 4), (3, 2, 4))),
    "in_dims=-2 on 3-d": (lambda xp, fx: fx.vmap(_f2(xp), in_dims=-2), ((3, 4, 2), (3, 4, 2))),
    "in_dims=(0, None)": (lambda xp, fx: fx.vmap(_f2(xp), in_dims=(0, None)), ((4, 3), (3,))),
    "in_dims=(None, 1)": (lambda xp, fx: fx.vmap(_f2(xp), in_dims=(None, 1)), ((3, 2), (3, 4, 2))),
    "in_dims=(1, -2)": (lambda xp, fx: fx.vmap(_f2(xp), in_dims=(1, -2)), ((3, 4), (4, 3))),
    "in_dims=(-1, 0) 3-d": (lambda xp, fx: fx.vmap(_f2(xp), in_dims=(-1, 0)), ((2, 3, 4), (4, 2, 3))),
    "in_dims=(2, None) 3-d": (lambda xp, fx: fx.vmap(_f2(xp), in_dims=(2, None)), ((2, 3, 4), (2, 3))),
    "batch of one": (lambda xp, fx: fx.vmap(_f2(xp), in_dims=(1, None)), ((3, 1), (3,))),
    "scalar per example": (lambda xp, fx: fx.vmap(lambda x, y: xp.exp(x) * y), ((5,), (5,))),
    "nested tuple in_dims": (
        lambda xp, fx: fx.vmap(lambda t, z: t[0] * xp.cos(t[1]) + z, in_dims=((0, 1), None)),
        (((4, 3), (3, 4)), (3,))),
    "int in_dims over a tuple argument": (
        lambda xp, fx: fx.vmap(lambda t: t[0] * t[1][0] - t[1][1], in_dims=(1,)),
        (((3, 4), ((3, 4), (3, 4))),)),
    "dict in_dims": (
        lambda xp, fx: fx.vmap(_layer(xp), in_dims=({"w": None, "b": 0}, 1)),
        ({"w": (2, 3), "b": (4, 2)}, (3, 4))),
    "dict in_dims all batched": (
        lambda xp, fx: fx.vmap(_layer(xp), in_dims=({"w": 2, "b": -1}, 0)),
        ({"w": (2, 3, 4), "b": (2, 4)}, (4, 3))),
    "dict of tuples in_dims": (
        lambda xp, fx: fx.vmap(lambda p, x: (p["layers"][0] @ x) * p["layers"][1],
                               in_dims=({"layers": (0, None)}, None)),
        ({"layers": ((4, 2, 3), (2,))}, (3,))),
    "list in_dims entry": (
        lambda xp, fx: fx.vmap(lambda ls: ls[0] * ls[1], in_dims=([0, 1],)),
        ([(4, 3), (3, 4)],)),
    "keyword arguments are not mapped": (
        lambda xp, fx: (lambda x: fx.vmap(lambda a, scale: a.sum() * scale)(x, scale=x[0, 0])),
        ((4, 3),)),
    # ----- out_dims -----
    "out_dims=1": (lambda xp, fx: fx.vmap(_f2(xp), out_dims=1), ((4, 3), (4, 3))),
    "out_dims=-1": (lambda xp, fx: fx.vmap(lambda x: x[:, None] * x[None, :], out_dims=-1),
                    ((4, 3),)),
    "out_dims=-2": (lambda xp, fx: fx.vmap(lambda x: x[:, None] * x[None, :], out_dims=-2),
                    ((4, 3),)),
    "in_dims=1 out_dims=1": (lambda xp, fx: fx.vmap(_f2(xp), in_dims=1, out_dims=1),
                             ((3, 4), (3, 4))),
    "out_dims tuple": (lambda xp, fx: fx.vmap(lambda x: (xp.sin(x), x.sum()), out_dims=(1, 0)),
                       ((4, 3),)),
    "out_dims nested tuple": (
        lambda xp, fx: fx.vmap(lambda x: (x, (x * 2, x[:, None] * x)), out_dims=(0, (1, -1))),
        ((4, 3),)),
    "out_dims dict": (lambda xp, fx: fx.vmap(lambda x: {"a": x * 3, "b": x.sum()},
                                              out_dims={"a": 1, "b": 0}), ((4, 3),)),
    "out_dims int for a tuple output": (
        lambda xp, fx: fx.vmap(lambda x: (x * 2, xp.exp(x)), out_dims=1), ((4, 3),)),
    "out_dims None for an unbatched output": (
        lambda xp, fx: fx.vmap(lambda x, w: (x * w, w * 2), in_dims=(0, None), out_dims=(0, None)),
        ((4, 3), (3,))),
    "scalar output out_dims=0": (lambda xp, fx: fx.vmap(lambda x: (x ** 2).sum(), out_dims=0),
                                 ((5, 2),)),
}

UNDER_TRANSFORMS = {
    "vmap(grad) in_dims=(None, 0, 0)": (
        lambda xp, fx: fx.vmap(fx.grad(_loss(xp)), in_dims=(None, 0, 0)), ((3,), (5, 2, 3), (5, 2))),
    "vmap(grad argnums=(0, 1)) in_dims=(1, None)": (
        lambda xp, fx: fx.vmap(fx.grad(lambda a, b: (xp.sin(a) * b).sum(), argnums=(0, 1)),
                               in_dims=(1, None)), ((3, 4), (3,))),
    "vmap(grad) out_dims=1": (
        lambda xp, fx: fx.vmap(fx.grad(lambda a: (a ** 3).sum()), out_dims=1), ((4, 3),)),
    "vmap(grad) of a dict, in_dims=({w: None, b: 0}, 1)": (
        lambda xp, fx: fx.vmap(fx.grad(lambda p, x: _layer(xp)(p, x).sum()),
                               in_dims=({"w": None, "b": 0}, 1)),
        ({"w": (2, 3), "b": (4, 2)}, (3, 4))),
    "grad inside vmap, in_dims=1": (
        lambda xp, fx: fx.vmap(lambda x: fx.grad(lambda y: (xp.exp(y) * y).sum())(x) * x, in_dims=1),
        ((3, 4),)),
    "grad inside vmap, in_dims=(1, None)": (
        lambda xp, fx: fx.vmap(lambda x, w: fx.grad(lambda v: xp.tanh(v @ w))(x), in_dims=(1, None)),
        ((3, 4), (3,))),
    "grad of a sum over vmap": (
        lambda xp, fx: fx.grad(lambda w, x: fx.vmap(_loss(xp), in_dims=(None, 0, 0))(
            w, x, x[:, :, 0]).sum()), ((3,), (4, 2, 3))),
    "grad over vmap with out_dims=1": (
        lambda xp, fx: fx.grad(lambda x: (fx.vmap(lambda v: v[:, None] * v, out_dims=1)(x) ** 2).sum()),
        ((3, 2),)),
    "jacrev of vmap": (
        lambda xp, fx: fx.jacrev(fx.vmap(lambda x, w: xp.sin(x * w), in_dims=(0, None))), ((3, 2), (2,))),
    "jacrev of vmap, argnums=1": (
        lambda xp, fx: fx.jacrev(fx.vmap(lambda x, w: xp.sin(x * w).sum(), in_dims=(0, None)),
                                 argnums=1), ((3, 2), (2,))),
    "jacrev of vmap in_dims=1 out_dims=1": (
        lambda xp, fx: fx.jacrev(fx.vmap(lambda x: xp.exp(x) * x.sum(), in_dims=1, out_dims=1)),
        ((2, 3),)),
    "jacfwd of vmap in_dims=-1": (
        lambda xp, fx: fx.jacfwd(fx.vmap(lambda x: xp.cos(x) * x[0], in_dims=-1)), ((2, 3),)),
    "vmap of jacrev": (
        lambda xp, fx: fx.vmap(fx.jacrev(lambda x, w: xp.tanh(x * w)), in_dims=(None, 0)),
        ((3,), (4, 3))),
    "vmap of jacfwd in_dims=-1": (
        lambda xp, fx: fx.vmap(fx.jacfwd(lambda x: x * x.sum()), in_dims=-1), ((3, 4),)),
    "vmap of hessian": (
        lambda xp, fx: fx.vmap(fx.hessian(lambda x: (x ** 3).sum() + x[0] * x[1])), ((4, 2),)),
    "vmap of jvp": (
        lambda xp, fx: fx.vmap(lambda x, t: fx.jvp(xp.sin, (x,), (t,))[1], in_dims=(0, None)),
        ((4, 3), (3,))),
    "vmap(grad) in_dims=-1": (
        lambda xp, fx: fx.vmap(fx.grad(lambda a: (xp.tanh(a) * a).sum()), in_dims=-1), ((3, 4),)),
    "hessian of a sum over vmap in_dims=1": (
        lambda xp, fx: fx.hessian(lambda x: fx.vmap(lambda v: (xp.sin(v) * v).sum(), in_dims=1)(x).sum()),
        ((3, 2),)),
    "jacrev of vmap of vmap": (
        lambda xp, fx: fx.jacrev(fx.vmap(fx.vmap(lambda a: xp.exp(a) * a), in_dims=1)), ((2, 3),)),
    "vmap of vjp": (
        lambda xp, fx: fx.vmap(lambda x, c: fx.vjp(lambda y: xp.sin(y) * y.sum(), x)[1](c)[0]),
        ((4, 3), (4, 3))),
    "vmap of vmap": (
        lambda xp, fx: fx.vmap(fx.vmap(_f2(xp))), ((2, 3, 4), (2, 3, 4))),
    "vmap of vmap in_dims=(0, None) then (1, 0)": (
        lambda xp, fx: fx.vmap(fx.vmap(_f2(xp), in_dims=(0, None)), in_dims=(1, 0)),
        ((4, 2, 3), (2, 3))),
    "vmap of vmap with out_dims": (
        lambda xp, fx: fx.vmap(fx.vmap(lambda x: x * x.sum(), in_dims=1, out_dims=1), in_dims=-1,
                               out_dims=0), ((3, 4, 2),)),
    "vmap of vmap of grad": (
        lambda xp, fx: fx.vmap(fx.vmap(fx.grad(lambda x, y: (xp.sin(x) * y).sum()), in_dims=(0, None)),
                               in_dims=(None, 0)), ((2, 3), (4, 3))),
}


def _draw(name: str, shapes):
    rng = _rng(name)

    def draw(spec):
        if isinstance(spec, dict):
            return {k: draw(v) for k, v in spec.items()}
        if isinstance(spec, list):
            return [draw(v) for v in spec]
        if isinstance(spec, tuple) and all(isinstance(n, int) for n in spec):
            return rng.uniform(-1.5, 1.5, size=spec)
        return tuple(draw(v) for v in spec)

    return draw(shapes)


def _run(name, build, shapes):
    args = _draw(name, shapes)
    theirs = build(torch, tfunc)(*to_torch(args))
    ours = build(np, wb)(*args)
    assert_same(ours, theirs, name)


@pytest.mark.parametrize("name", ALONE)
def test_vmap_dims(name):
    _run(name, *ALONE[name])


@pytest.mark.parametrize("name", UNDER_TRANSFORMS)
def test_vmap_dims_under_transforms(name):
    _run(name, *UNDER_TRANSFORMS[name])


def test_draw_treats_shape_tuples_as_leaves():
    """The shape specs above are pytrees whose leaves are shape tuples (a guard for the helper)."""
    args = _draw("x", (((4, 3), (3,)), {"w": (2,)}, [(1,)]))
    assert args[0][0].shape == (4, 3) and args[0][1].shape == (3,)
    assert args[1]["w"].shape == (2,) and isinstance(args[2], list) and args[2][0].shape == (1,)


# ----- every op of the catalogue with the batch axis last, and with an unbatched argument -----
OP_CASES = [c for c in CASES if not c.name.endswith("(draw 2)")]


def _batched(case, axis: int):
    """Three nearby points of the case stacked along ``axis`` of every argument."""
    rng = case.rng("vmap dims")
    first = case.inputs()
    rows = [first] + [[x + 0.01 * rng.standard_normal(np.shape(x)) for x in first] for _ in range(2)]
    return [np.stack(column, axis=axis) for column in zip(*rows)]


@pytest.mark.parametrize("case", params(OP_CASES, "vmap"))
def test_every_op_batched_last_out_dims_last(case):
    """vmap(op, in_dims=-1, out_dims=-1) and vmap(grad(sum(op * R)), in_dims=-1)."""
    xs = _batched(case, -1)
    ts = to_torch(xs)
    assert_same(wb.vmap(case.numpy, in_dims=-1, out_dims=-1)(*xs),
                tfunc.vmap(case.torch, in_dims=-1, out_dims=-1)(*ts), f"{case.name} values")
    weights = case.weights()
    argnums = tuple(range(len(xs)))
    ours = wb.vmap(wb.grad(lambda *a: np.sum(case.numpy(*a) * weights), argnums=argnums),
                   in_dims=-1)(*xs)
    theirs = tfunc.vmap(tfunc.grad(lambda *a: (case.torch(*a) * torch.from_numpy(weights)).sum(),
                                   argnums=argnums), in_dims=-1)(*ts)
    assert_same(ours, theirs, f"{case.name} per-sample gradients")


@pytest.mark.parametrize("case", params([c for c in OP_CASES if c.arity >= 2], "vmap"))
def test_every_op_with_its_first_argument_unbatched(case):
    """in_dims=(None, 0, ...): the first argument is shared by the whole batch."""
    batched = _batched(case, 0)
    xs = [case.inputs()[0], *batched[1:]]
    in_dims = (None,) + (0,) * (len(xs) - 1)
    ts = to_torch(xs)
    assert_same(wb.vmap(case.numpy, in_dims=in_dims)(*xs),
                tfunc.vmap(case.torch, in_dims=in_dims)(*ts), f"{case.name} values")
    weights = case.weights()
    ours = wb.vmap(wb.grad(lambda *a: np.sum(case.numpy(*a) * weights), argnums=0),
                   in_dims=in_dims)(*xs)
    theirs = tfunc.vmap(tfunc.grad(lambda *a: (case.torch(*a) * torch.from_numpy(weights)).sum(),
                                   argnums=0), in_dims=in_dims)(*ts)
    assert_same(ours, theirs, f"{case.name} per-sample gradients of the shared argument")
