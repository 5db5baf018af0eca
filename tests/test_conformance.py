"""torch.func conformance at the edges: error cases of torch.func's own test suite, each run
against torch.func live. workbench must refuse the same inputs with an error of the
TypeError/ValueError family (a ``WorkbenchError``) whose message says the same thing -- both
messages must contain the key phrase -- and accept what torch accepts with the same result.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import workbench as wb

torch = pytest.importorskip("torch")
tf = torch.func

X = np.array([1.0, 2.0])
XT = torch.tensor(X)
INTS = np.array([1, 2])
INTS_T = torch.tensor(INTS)
M = np.arange(6.0).reshape(2, 3)
MT = torch.tensor(M)


def ident(x):
    return x


# (name, workbench call, torch.func call, phrase both messages contain)
REFUSED = [
    ("vjp integer primal", lambda: wb.vjp(lambda x: x * 2, INTS),
     lambda: tf.vjp(lambda x: x * 2, INTS_T), "floating"),
    ("jvp integer primal", lambda: wb.jvp(lambda x: x * 2, (INTS,), (INTS,)),
     lambda: tf.jvp(lambda x: x * 2, (INTS_T,), (INTS_T,)), "floating"),
    ("jacrev of None", lambda: wb.jacrev(lambda x: None)(X),
     lambda: tf.jacrev(lambda x: None)(XT), "non-empty output"),
    ("jacrev of ()", lambda: wb.jacrev(lambda x: ())(X),
     lambda: tf.jacrev(lambda x: ())(XT), "non-empty output"),
    ("jacfwd of None", lambda: wb.jacfwd(lambda x: None)(X),
     lambda: tf.jacfwd(lambda x: None)(XT), "non-empty output"),
    ("jacfwd of ()", lambda: wb.jacfwd(lambda x: ())(X),
     lambda: tf.jacfwd(lambda x: ())(XT), "non-empty output"),
    ("jvp of None", lambda: wb.jvp(lambda x: None, (X,), (X,)),
     lambda: tf.jvp(lambda x: None, (XT,), (XT,)), "non-empty output"),
    ("jvp of ()", lambda: wb.jvp(lambda x: (), (X,), (X,)),
     lambda: tf.jvp(lambda x: (), (XT,), (XT,)), "non-empty output"),
    ("vjp of None", lambda: wb.vjp(lambda x: None, X),
     lambda: tf.vjp(lambda x: None, XT), "non-empty output"),
    ("jvp primals an array", lambda: wb.jvp(ident, X, (X,)),
     lambda: tf.jvp(ident, XT, (XT,)), "tuple"),
    ("jvp primals a list", lambda: wb.jvp(ident, [X], [X]),
     lambda: tf.jvp(ident, [XT], [XT]), "tuple"),
    ("jvp tangents of another length", lambda: wb.jvp(lambda x, y: x, (X, X), (X,)),
     lambda: tf.jvp(lambda x, y: x, (XT, XT), (XT,)), "same (python )?structure"),
    ("jvp tangents list for tuple", lambda: wb.jvp(lambda p: p[0], ((X, X),), ([X, X],)),
     lambda: tf.jvp(lambda p: p[0], ((XT, XT),), ([XT, XT],)), "same (python )?structure"),
    ("jvp no tensors", lambda: wb.jvp(lambda: 1.0, (), ()),
     lambda: tf.jvp(lambda: torch.tensor(1.0), (), ()), "at least one"),
    ("vmap in_dims a list", lambda: wb.vmap(ident, in_dims=[0])(X),
     lambda: tf.vmap(ident, in_dims=[0])(XT), "in_dims"),
    ("vmap in_dims a list of two", lambda: wb.vmap(lambda a, b: a + b, in_dims=[0, 0])(X, X),
     lambda: tf.vmap(lambda a, b: a + b, in_dims=[0, 0])(XT, XT), "in_dims"),
    ("vmap in_dims a set", lambda: wb.vmap(ident, in_dims={0})(X),
     lambda: tf.vmap(ident, in_dims={0})(XT), "in_dims"),
    ("vmap in_dims a string", lambda: wb.vmap(ident, in_dims="0")(X),
     lambda: tf.vmap(ident, in_dims="0")(XT), "in_dims"),
    ("vmap in_dims a float", lambda: wb.vmap(ident, in_dims=0.0)(X),
     lambda: tf.vmap(ident, in_dims=0.0)(XT), "in_dims"),
    ("vmap too few in_dims", lambda: wb.vmap(lambda a, b: a + b, in_dims=(0,))(X, X),
     lambda: tf.vmap(lambda a, b: a + b, in_dims=(0,))(XT, XT), "not compatible with the structure"),
    ("vmap too many in_dims", lambda: wb.vmap(ident, in_dims=(0, 0))(X),
     lambda: tf.vmap(ident, in_dims=(0, 0))(XT), "not compatible with the structure"),
    ("vmap nested in_dims of another kind", lambda: wb.vmap(lambda t: t[0], in_dims=([0, 0],))((M, M)),
     lambda: tf.vmap(lambda t: t[0], in_dims=([0, 0],))((MT, MT)), "not compatible with the structure"),
    ("vmap nested out_dims deeper than the output",
     lambda: wb.vmap(lambda x: (x, x), out_dims=(0, (0, 1)))(M),
     lambda: tf.vmap(lambda x: (x, x), out_dims=(0, (0, 1)))(MT), "not compatible with the structure"),
    ("vmap out_dims a list for a tuple output", lambda: wb.vmap(lambda x: (x, x), out_dims=[0, 1])(M),
     lambda: tf.vmap(lambda x: (x, x), out_dims=[0, 1])(MT), "not compatible with the structure"),
    ("vmap too few out_dims", lambda: wb.vmap(lambda x: (x, x), out_dims=(0,))(M),
     lambda: tf.vmap(lambda x: (x, x), out_dims=(0,))(MT), "not compatible with the structure"),
    ("vmap out_dims a string", lambda: wb.vmap(ident, out_dims="0")(M),
     lambda: tf.vmap(ident, out_dims="0")(MT), "out_dims"),
    ("vmap out_dims None for a batched output", lambda: wb.vmap(ident, out_dims=None)(M),
     lambda: tf.vmap(ident, out_dims=None)(MT), "out_dim(s)? (is )?None"),
]


@pytest.mark.parametrize("name,ours,theirs,phrase", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_like_torch_func(name, ours, theirs, phrase):
    with pytest.raises(Exception) as torch_error:
        theirs()
    assert re.search(phrase, str(torch_error.value), re.IGNORECASE), str(torch_error.value)
    with pytest.raises(wb.WorkbenchError) as our_error:
        ours()
    assert isinstance(our_error.value, (TypeError, ValueError))
    assert re.search(phrase, str(our_error.value), re.IGNORECASE), str(our_error.value)


def test_vmap_out_of_range_out_dims_refused_like_torch():
    with pytest.raises(IndexError, match="out of range"):
        tf.vmap(ident, out_dims=2)(MT)
    with pytest.raises(wb.WorkbenchError, match="out of range") as error:
        wb.vmap(ident, out_dims=2)(M)
    assert isinstance(error.value, ValueError)


def _assert_same(ours, theirs):
    if isinstance(theirs, (tuple, list)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _assert_same(a, b)
    elif isinstance(theirs, dict):
        assert ours.keys() == theirs.keys()
        for key in theirs:
            _assert_same(ours[key], theirs[key])
    else:
        np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=1e-12)
        assert np.shape(ours) == tuple(theirs.shape)


SQUARE = np.arange(9.0).reshape(3, 3) / 7

# (name, a vmap call given the vmap to use, its arguments as numpy arrays)
ACCEPTED = [
    ("nested tuple out_dims", lambda v: v(lambda x: (x, (x * 2, x * x)), out_dims=(0, (0, 1))),
     (SQUARE,)),
    ("dict out_dims", lambda v: v(lambda x: {"a": x * 3, "b": x}, out_dims={"a": 1, "b": 0}),
     (M,)),
    ("negative out_dims", lambda v: v(lambda x: x * x, out_dims=-1), (M,)),
    ("list out_dims for a list", lambda v: v(lambda x: [x, x + 1], out_dims=[1, 0]), (M,)),
    ("nested in_dims", lambda v: v(lambda t: t[0] * t[1], in_dims=((0, 1),)), ((SQUARE, SQUARE),)),
    ("dict in_dims", lambda v: v(lambda d: d["a"] - d["b"], in_dims=({"a": 0, "b": 1},)),
     ({"a": SQUARE, "b": SQUARE},)),
]


@pytest.mark.parametrize("name,make,args", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_like_torch_func(name, make, args):
    torch_args = [{k: torch.tensor(v) for k, v in a.items()} if isinstance(a, dict) else
                  tuple(torch.tensor(v) for v in a) if isinstance(a, tuple) else torch.tensor(a)
                  for a in args]
    _assert_same(make(wb.vmap)(*args), make(tf.vmap)(*torch_args))


def test_out_dims_none_for_an_output_that_does_not_depend_on_the_batch():
    def f(x):
        return x * 2, np.ones(2)

    def g(x):
        return x * 2, torch.ones(2, dtype=torch.float64)

    ours = wb.vmap(f, out_dims=(0, None))(M)
    theirs = tf.vmap(g, out_dims=(0, None))(MT)
    _assert_same(ours, theirs)
