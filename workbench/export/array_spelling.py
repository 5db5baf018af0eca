"""How each target spells an exported array program: numpy, jax.numpy or torch.

The array graph prints its ops as numpy (``workbench.arrays.graph.code_of``); numpy and jax
modules use that text with the runtime's names renamed (``_np.sin`` -> ``jnp.sin``). torch
spells many ops differently (``permute``, ``amax(dim=...)``, ``index_add_``), so it has its own
printer per op here. A torch module computes in the dtype of its float inputs (float32 in,
float32 out): scalar literals take the tensors' dtype, and float constants are converted to it.

>>> SPELLINGS["torch"].code("transpose", ["w"], ((1, 0),), ["f"], "f")
'torch.permute(w, (1, 0))'
>>> SPELLINGS["torch"].code("step", ["z"], (), ["f"], "f")
'(~(z <= 0.0)).to(dtype)'
"""

from __future__ import annotations

import inspect
import io
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..arrays import rules
from ..arrays.graph import ARRAY_RUNTIME, RULES, code_of
from ..ops import OPS, render
from .python_like import _TORCH_NAMES, JAX


class NotPrintable(Exception):
    """This program is not printed at array level in this target (the element export is)."""


def renamed(expression: str, names: dict[str, str]) -> str:
    """``expression`` with the runtime's names as the module spells them (``_np.sin`` ->
    ``np.sin``), renaming whole name tokens only."""
    tokens = list(tokenize.generate_tokens(io.StringIO(expression).readline))
    out, pos = [], 0
    for tok in tokens:
        if tok.type != tokenize.NAME or not tok.string.startswith("_"):
            continue
        if tok.start[0] != 1:
            raise NotPrintable(f"a statement over several lines: {expression!r}")
        if tok.string in names:
            out.append(expression[pos:tok.start[1]] + names[tok.string])
            pos = tok.end[1]
        elif tok.string in ARRAY_RUNTIME and tok.string != "_scatter_add":
            raise NotPrintable(f"no module spelling for {tok.string}")
    return "".join(out) + expression[pos:]


@dataclass(frozen=True)
class Spelling:
    """How a target module spells the array program: its ops, imports, helpers, results and
    guards. ``kinds`` given to :meth:`code` are the arguments' dtype kinds ("f", "i", "b"; a
    capital letter for a scalar literal)."""

    target: str
    names: dict[str, str]  # runtime name -> module name (``_np`` -> ``np``)
    header: str
    helpers: str  # always in the module: ``_input``, ``_integers`` (and the guard check)
    scatter_add: str  # the ``_scatter_add`` helper, copied in when the program calls it
    decorator: str  # before each function ("" for none)
    scalar: str  # a scalar result
    copies: bool  # results that may share memory with inputs or constants are copied
    array: str  # an array result that must be copied or broadcast to its shape
    constant: str  # a constant array: "{values}", "{dtype}" (numpy's name), "{shape}"
    uniform: str  # a constant array of one value: "{value}", "{dtype}", "{shape}"
    float_constant: str = "{0}"  # a float constant where a statement uses it
    dtype_line: str = ""  # the computation's dtype from the float inputs: "{0}" their names

    def code(self, op: str, args: Sequence[str], params: tuple, kinds: Sequence[str],
             result: str, shapes: Sequence[tuple] = ()) -> str:
        """The expression of one op over argument texts (of these dtype kinds and shapes)."""
        if self.target == "torch":
            return renamed(_torch_code(op, list(args), params, kinds, result, shapes),
                           self.names)
        return renamed(code_of(op, args, params), self.names)

    def literal(self, text: str) -> str:
        return renamed(text, self.names)

    def dtype_name(self, numpy_name: str) -> str:
        return f"{'torch' if self.target == 'torch' else 'np'}.{numpy_name}"

    def guard(self, test: str, holds: bool, message: list[str]) -> list[str]:
        """Lines that raise ``ValueError(message)`` where ``test`` is not ``holds``."""
        *body, last = message
        if self.target == "jax":  # checked at run time under jit too
            condition = test if holds else f"jnp.logical_not({test})"
            return [f"_check({condition}, (", *body, last + "))"]
        return [f"if {'not ' if holds else ''}{test}:", "    raise ValueError(", *body,
                last + ")"]


# The helpers every module has: reading float inputs and integer data, with clear errors.
# CHECK_SHAPE and CHECK_INTEGERS are filled in per target by _helpers.
_CHECK_SHAPE = '''
    if SHAPE != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {SHAPE}; "
                         "this code was exported for that shape: export again for another one")'''

_CHECK_INTEGERS = '''
    if NOT_INTEGERS:
        raise ValueError(f"{name} must hold integers (class labels, indices), got dtype "
                         f"{DTYPE}: pass integer data, as at export")'''


def _helpers(text: str, shape: str, dtype: str, not_integers: str) -> str:
    return (text.replace("    CHECK_SHAPE", _CHECK_SHAPE.strip("\n"))
            .replace("    CHECK_INTEGERS", _CHECK_INTEGERS.strip("\n"))
            .replace("NOT_INTEGERS", not_integers).replace("SHAPE", shape)
            .replace("DTYPE", dtype))


_NUMPY_HELPERS = _helpers('''
def _input(value, name, shape):
    """``value`` as a float64 array of ``shape`` (a clear error otherwise)."""
    array = np.asarray(value, dtype=np.float64)
    CHECK_SHAPE
    return array


def _integers(value, name, shape):
    """Integer (or bool) data as an array of ``shape`` (a clear error otherwise)."""
    array = np.asarray(value)
    CHECK_INTEGERS
    CHECK_SHAPE
    return array if array.dtype.kind == "b" else array.astype(np.int64)
''', "array.shape", "array.dtype", 'array.dtype.kind not in "iub"')

_JAX_HELPERS = _helpers(JAX.helpers.rstrip("\n") + '''


def _integers(value, name, shape):
    """Integer (or bool) data as a jax array of ``shape`` (a clear error otherwise)."""
    array = jnp.asarray(value)
    CHECK_INTEGERS
    CHECK_SHAPE
    return array
''', "array.shape", "array.dtype", 'array.dtype.kind not in "iub"')

_JAX_SCATTER_ADD = '''
def _scatter_add(shape, index, values, basic):
    """Zeros of ``shape`` with ``values`` added at ``index`` (repeated indices accumulate)."""
    return jnp.zeros(shape, dtype=jnp.result_type(values)).at[index].add(values)
'''

_TORCH_HELPERS = _helpers('''
def _input(value, name, shape):
    """``value`` as a float tensor of ``shape``: tensors and numpy arrays keep their float dtype,
    Python numbers and lists are float64 (as numpy reads them), integer data becomes float64."""
    if not hasattr(value, "dtype"):
        value = torch.as_tensor(value, dtype=torch.float64)
    tensor = torch.as_tensor(value)
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    CHECK_SHAPE
    return tensor


def _integers(value, name, shape):
    """Integer (or bool) data as a tensor of ``shape`` (a clear error otherwise)."""
    tensor = torch.as_tensor(value)
    CHECK_INTEGERS
    CHECK_SHAPE
    return tensor if tensor.dtype == torch.bool else tensor.to(torch.int64)


def _dtype(*tensors):
    """The dtype the program computes in: torch's promotion of its float inputs' dtypes."""
    dtype = tensors[0].dtype
    for tensor in tensors[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype
''', "tuple(tensor.shape)", "tensor.dtype", "tensor.is_floating_point() or tensor.is_complex()")

_TORCH_SCATTER_ADD = '''
def _scatter_add(shape, index, values, basic, flips=()):
    """Zeros of ``shape`` with ``values`` added at ``index`` (repeated indices accumulate),
    indexing the array with the dims ``flips`` reversed."""
    values = torch.as_tensor(values)
    out = torch.zeros(shape, dtype=values.dtype)
    positions = torch.arange(out.numel()).reshape(shape)
    positions = (torch.flip(positions, flips) if flips else positions)[index]
    out.view(-1).index_add_(0, positions.reshape(-1),
                            torch.broadcast_to(values, positions.shape).reshape(-1))
    return out
'''

SPELLINGS = {
    "numpy": Spelling("numpy", {"_np": "np", "_nan": "np.nan", "_inf": "np.inf"},
                      "import numpy as np", _NUMPY_HELPERS,
                      inspect.getsource(rules._scatter_add), '@np.errstate(all="ignore")',
                      "np.float64({0})", True, "np.array({0}, dtype=np.float64)",
                      "np.array([\n    {values}\n], dtype=np.{dtype}).reshape({shape})",
                      "np.full({shape}, {value}, dtype=np.{dtype})"),
    # jax arrays are immutable (nothing to copy); constants stay numpy arrays, which jax reads
    # in the precision jax_enable_x64 gives when the function runs.
    "jax": Spelling("jax", {"_np": "jnp", "_nan": "jnp.nan", "_inf": "jnp.inf"},
                    JAX.header + "\nimport numpy as np", _JAX_HELPERS, _JAX_SCATTER_ADD, "",
                    "jnp.asarray({0})", False, "jnp.asarray({0})",
                    "np.array([\n    {values}\n], dtype=np.{dtype}).reshape({shape})",
                    "np.full({shape}, {value}, dtype=np.{dtype})"),
    "torch": Spelling("torch", {"_nan": "torch.nan", "_inf": "torch.inf"}, "import torch",
                      _TORCH_HELPERS, _TORCH_SCATTER_ADD, "", "{0}", True, "{0}.clone()",
                      "torch.tensor([\n    {values}\n], dtype=torch.{dtype}).reshape({shape})",
                      "torch.full({shape}, {value}, dtype=torch.{dtype})",
                      float_constant="{0}.to(dtype)", dtype_line="dtype = _dtype({0})"),
}


# ----- torch printers -----
def _tensor(text: str, kind: str) -> str:
    """A scalar literal as a 0-d tensor (where torch wants tensors): a float in the program's
    dtype (a 0-d tensor does not change the dtype of the others)."""
    if kind == "F":
        return f"torch.tensor({text}, dtype=dtype)"
    return f"torch.tensor({text})"


def _as_float(text: str, kind: str) -> str:
    """Integer and bool tensors in float arithmetic are converted to the program's dtype
    (torch refuses ``1.0 - mask``, and gives ``labels * 0.5`` in float32)."""
    return f"{text}.to(dtype)" if kind in ("i", "b") else text


_INFIX = frozenset({"add", "sub", "mul", "div", "neg", "pow", "gt", "ge", "lt", "le", "eq", "ne",
                    "step", "step_tie", "in_range"})
_FLOAT_ARITHMETIC = frozenset({"add", "sub", "mul", "div", "neg", "pow", "mod", "floordiv",
                               "atan2", "maximum", "minimum"})

_TORCH_OPS: dict[str, str | Callable[[list[str], tuple], str]] = {
    "add": lambda a, p: "(" + " + ".join(a) + ")",
    "sub": "({0} - {1})", "mul": "({0} * {1})", "div": "({0} / {1})", "neg": "(-{0})",
    "pow": "({0} ** {1})",
    "mod": "torch.remainder({0}, {1})",
    "floordiv": "torch.div({0}, {1}, rounding_mode='floor')",
    "sign": "torch.where(torch.isnan({0}), {0}, torch.sign({0}))",  # torch.sign(nan) is 0
    "relu": "torch.relu({0})",
    "step": "(~({0} <= 0.0)).to(dtype)",  # 1 where not x <= 0: nan included, as numpy's
    "sigmoid": "torch.sigmoid({0})",
    "softplus": "torch.nn.functional.softplus({0})",  # x above 20, as the op table's
    "atan2": "torch.atan2({0}, {1})",
    "maximum": "torch.maximum({0}, {1})", "minimum": "torch.minimum({0}, {1})",
    "step_tie": "(1.0 - ({0} < {1}).to(dtype) - 0.5 * ({0} == {1}).to(dtype))",
    "clip": "torch.clamp({0}, {p0}, {p1})",
    "in_range": "(({0} >= {p0}) & ({0} <= {p1})).to(dtype)",
    "where": "torch.where({0}, {1}, {2})",
    "gt": "({0} > {1})", "ge": "({0} >= {1})", "lt": "({0} < {1})", "le": "({0} <= {1})",
    "eq": "({0} == {1})", "ne": "({0} != {1})",
    "logical_and": "torch.logical_and({0}, {1})", "logical_or": "torch.logical_or({0}, {1})",
    "logical_not": "torch.logical_not({0})",
}


def _reduction(name: str) -> Callable[[list[str], tuple], str]:
    def code(args: list[str], params: tuple) -> str:
        axes, keepdims = params
        if not axes:  # torch reads dim=() as every dim; numpy as none
            return args[0]
        return f"torch.{name}({args[0]}, dim={axes!r}, keepdim={keepdims})"

    return code


def forward_slices(template: tuple, shape: tuple) -> tuple[tuple, tuple[int, ...]]:
    """``template`` (``rules``' index template) with each negative-step slice made the
    positive-step slice of the flipped dim, and the dims to flip first: torch's slices have no
    negative steps.

    >>> forward_slices((("s", None, None, -1), ("i", 0)), (5, 2))
    ((('s', 0, 5, 1), ('i', 0)), (0,))
    """
    consuming = sum(item[0] in ("s", "i", "a") for item in template)
    out, flips, dim = [], [], 0
    for item in template:
        tag = item[0]
        if tag == "e":
            dim += len(shape) - consuming
        elif tag == "s" and item[3] is not None and item[3] < 0:
            n = shape[dim]
            picked = range(n)[slice(*item[1:])]
            out.append(("s", n - 1 - picked[0], n - picked[-1], -item[3]) if picked else
                       ("s", 0, 0, None))
            flips.append(dim)
            dim += 1
            continue
        dim += tag in ("s", "i", "a")
        out.append(item)
    return tuple(out), tuple(flips)


def _torch_index(args: list[str], params: tuple, shape: tuple) -> str:
    template, flips = forward_slices(params[0], shape)
    x = f"torch.flip({args[0]}, {flips!r})" if flips else args[0]
    return RULES["index"].code([x, *args[1:]], (template,))


def _torch_index_add(args: list[str], params: tuple) -> str:
    template, flips = forward_slices(params[0], params[1])
    text = RULES["index_add"].code(args, (template, params[1]))  # _scatter_add(...)
    return text[:-1] + f", {flips!r})" if flips else text


def _einsum(args: list[str], params: tuple) -> str:
    text = RULES["einsum"].code(args, params)  # a @ b, a.T @ b, a[:, None] * b: torch's too
    if "_np." not in text:
        return text
    sa, sb, out = params
    return f"torch.einsum('{sa},{sb}->{out}', {args[0]}, {args[1]})"


_TORCH_RULES: dict[str, Callable[[list[str], tuple], str]] = {
    "sum": _reduction("sum"), "amax": _reduction("amax"), "amin": _reduction("amin"),
    "reshape": lambda a, p: f"torch.reshape({a[0]}, {p[0]!r})",
    "transpose": lambda a, p: f"torch.permute({a[0]}, {p[0]!r})",
    "broadcast_to": lambda a, p: f"torch.broadcast_to({a[0]}, {p[0]!r})",
    "index_add": _torch_index_add,
    "concatenate": lambda a, p: f"torch.cat(({''.join(x + ', ' for x in a)}), dim={p[0]})",
    "einsum": _einsum,
    "cumsum": lambda a, p: f"torch.cumsum({a[0]}, dim={p[0]})",
    "cast": lambda a, p: f"{a[0]}.to({'dtype' if p[0].startswith('float') else 'torch.' + p[0]})",
}


def _torch_code(op: str, args: list[str], params: tuple, kinds: Sequence[str], result: str,
                shapes: Sequence[tuple]) -> str:
    if op not in _INFIX:  # function calls: scalar literals as 0-d tensors
        args = [_tensor(a, k) if k.isupper() else a for a, k in zip(args, kinds)]
    if result == "f" and (op in _FLOAT_ARITHMETIC or (op in OPS and op not in RULES and
                                                     OPS[op].arity == 1)):
        args = [_as_float(a, k) for a, k in zip(args, kinds)]
    elif op == "where" and result == "f":
        args = [args[0]] + [_as_float(a, k) for a, k in zip(args[1:], kinds[1:])]
    if op == "index":
        return _torch_index(args, params, shapes[0])
    if op in _TORCH_RULES:
        return _TORCH_RULES[op](args, params)
    if op in _TORCH_OPS:
        return render(_TORCH_OPS[op], args, params)
    if op in _TORCH_NAMES:
        return f"torch.{_TORCH_NAMES[op]}({args[0]})"
    raise NotPrintable(f"no torch spelling for the op {op!r}")
