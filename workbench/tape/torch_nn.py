"""torch.nn.functional on the tape: what Linear, Conv1d, ReLU, LeakyReLU, Tanh, Sigmoid,
Flatten, Dropout, Sequential, MSELoss, CrossEntropyLoss and NLLLoss call, with torch's semantics.

Each function is written with the tape's numpy-level ops (``numpy_api``), so it needs no VJP of
its own and shares no code with the symbolic side (``workbench.arrays``): the gradient of a
module comes from the same few hand-written rules as everything else on the tape. Options the
tape does not implement raise :class:`UnsupportedOperationError`; shapes torch would refuse
raise :class:`ShapeError`.

The functions take tape values and numpy constants (``torch_tensor`` converts torch's
arguments); they register themselves in ``torch_api.FUNCTIONAL_HANDLERS``.

>>> import numpy as np
>>> from workbench.tape.core import Tape
>>> x = Tape().input(np.array([[1.0, 2.0, 3.0]]))
>>> conv1d(x, np.ones((1, 1, 2)), padding=1).value.tolist()
[[1.0, 3.0, 5.0, 3.0]]
>>> float(cross_entropy(np.array([[0.0, 0.0]]), np.array([1])).round(4))
0.6931
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ShapeError, UnsupportedOperationError
from . import numpy_api as api
from . import torch_api
from .core import primitive, raw


def _shape(x: Any) -> tuple:
    return np.shape(raw(x))


def _dtype(x: Any) -> np.dtype:
    return np.result_type(raw(x))


def _refuse(function: str, option: str, what_to_do: str) -> UnsupportedOperationError:
    return UnsupportedOperationError(
        f"torch.nn.functional.{function} with {option} is not supported on tape values; "
        f"{what_to_do}")


# ----- layers -----
def linear(input: Any, weight: Any, bias: Any = None) -> Any:
    """F.linear: ``input @ weight.T + bias`` (a 1-D weight gives one output, as torch)."""
    if len(_shape(weight)) not in (1, 2):
        raise ShapeError(f"linear: the weight must be 1-D or 2-D, got shape {_shape(weight)}")
    out = api.matmul(input, api.transpose(weight) if len(_shape(weight)) == 2 else weight)
    return out if bias is None else out + bias


def _single(value: Any, option: str) -> int:
    """An int option of conv1d (an int or a 1-tuple), at least 1 (padding: at least 0)."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
            value < (0 if option == "padding" else 1):
        raise _refuse("conv1d", f"{option}={value!r}",
                      f"give {option} as one {'non-negative' if option == 'padding' else 'positive'}"
                      " int")
    return int(value)


def _conv1d_padding(padding: Any, span: int, stride: int) -> tuple[int, int]:
    """Zeros added left and right: 'valid' none, 'same' keeps the length (the odd one right)."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        if stride != 1:
            raise _refuse("conv1d", "padding='same' and a stride",
                          "torch refuses it too: give the padding as an int")
        return span // 2, span - span // 2
    amount = _single(padding, "padding")
    return amount, amount


def conv1d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Any:
    """F.conv1d (a cross-correlation) as im2col: the zero-padded input's windows gathered by one
    integer index (a ``getitem``; its adjoint scatter-adds), contracted with the weight by one
    ``matmul``. Input ``(batch, in, length)`` or ``(in, length)``, weight ``(out, in, k)``."""
    if groups != 1:
        raise _refuse("conv1d", f"groups={groups!r}",
                      "only groups=1 is implemented: use separate Conv1d layers per group")
    stride, dilation = _single(stride, "stride"), _single(dilation, "dilation")
    x_shape, w_shape = _shape(input), _shape(weight)
    if len(w_shape) != 3 or len(x_shape) not in (2, 3):
        raise ShapeError(f"conv1d: expected an input of shape (batch, channels, length) or "
                         f"(channels, length) and a weight (out, in, kernel), got {x_shape} and "
                         f"{w_shape}")
    unbatched = len(x_shape) == 2
    x = api.reshape(input, (1,) + x_shape) if unbatched else input
    batch, channels, length = _shape(x)
    out_channels, in_channels, k = w_shape
    if in_channels != channels:
        raise ShapeError(f"conv1d: the input has {channels} channels, the weight expects "
                         f"{in_channels}")
    span = dilation * (k - 1)
    left, right = _conv1d_padding(padding, span, stride)
    n_out = (length + left + right - span - 1) // stride + 1
    if n_out < 1:
        raise ShapeError(f"conv1d: the padded input (length {length + left + right}) is shorter "
                         f"than the dilated kernel ({span + 1})")
    if left or right:
        zeros = [np.zeros((batch, channels, n), _dtype(x)) for n in (left, right)]
        x = api.concatenate([zeros[0], x, zeros[1]], axis=2)
    windows = (np.arange(n_out) * stride)[:, None] + np.arange(k)[None, :] * dilation
    patches = api.transpose(x[:, :, windows], (0, 2, 1, 3))  # (batch, n_out, in, k)
    columns = api.reshape(patches, (batch, n_out, channels * k))
    out = api.matmul(columns, api.transpose(api.reshape(weight, (out_channels, channels * k))))
    out = api.transpose(out, (0, 2, 1))  # (batch, out, n_out)
    if bias is not None:
        out = out + api.reshape(bias, (out_channels, 1))
    return api.reshape(out, _shape(out)[1:]) if unbatched else out


def relu(input: Any, inplace: bool = False) -> Any:
    if inplace:
        raise _refuse("relu", "inplace=True", "use ReLU() / F.relu(x) without inplace")
    return primitive("relu", input)


def leaky_relu(input: Any, negative_slope: float = 0.01, inplace: bool = False) -> Any:
    """``x`` where x > 0, else ``negative_slope * x`` (torch: the slope's gradient at 0)."""
    if inplace:
        raise _refuse("leaky_relu", "inplace=True", "use F.leaky_relu(x) without inplace")
    return api.where(api.compare("gt", input, 0.0), input, input * negative_slope)


def dropout(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> Any:
    """Identity in eval mode (and for p=0); training mode draws random masks the tape refuses."""
    if training and p != 0:
        raise _refuse("dropout", "training=True",
                      "dropout draws a random mask; call model.eval() first (dropout is then "
                      "the identity), or remove the Dropout layer")
    return input


def flatten(input: Any, start_dim: int = 0, end_dim: int = -1) -> Any:
    """torch.flatten / x.flatten(start_dim, end_dim): merge those dims into one."""
    shape = _shape(input)
    if not shape:
        return api.reshape(input, (1,))
    start, end = start_dim % len(shape), end_dim % len(shape)
    if start > end:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = int(np.prod(shape[start:end + 1], dtype=np.int64))
    return api.reshape(input, shape[:start] + (merged,) + shape[end + 1:])


# ----- losses -----
def _legacy_reduction(size_average: Any, reduce: Any, reduction: str) -> str:
    """torch's deprecated size_average/reduce arguments, as torch reads them."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else "mean" if size_average else "sum"


def _reduce(losses: Any, reduction: str, function: str) -> Any:
    if reduction == "mean":
        return api.mean(losses)
    if reduction == "sum":
        return api.sum(losses)
    if reduction == "none":
        return losses
    raise _refuse(function, f"reduction={reduction!r}", "use 'mean', 'sum' or 'none'")


def mse_loss(input: Any, target: Any, size_average: Any = None, reduce: Any = None,
             reduction: str = "mean", weight: Any = None) -> Any:
    """F.mse_loss: the squared errors, reduced (shapes broadcast, as torch does)."""
    if weight is not None:
        raise _refuse("mse_loss", "weight", "multiply the squared errors by the weights yourself")
    error = input - target
    return _reduce(error * error, _legacy_reduction(size_average, reduce, reduction), "mse_loss")


def _class_weights(weight: Any, ndim: int, class_dim: int) -> Any:
    """The per-class weight shaped to broadcast along the class dim of the log-probabilities."""
    shape = [1] * ndim
    shape[class_dim] = -1
    return api.reshape(weight, tuple(shape))


def _pick_classes(logp: Any, target: np.ndarray, class_dim: int) -> Any:
    """``logp`` at the target class of every sample: one gather, shape of ``target``."""
    index = [np.indices(target.shape)[i] for i in range(target.ndim)]
    index.insert(class_dim, target)
    return logp[tuple(index)]


def nll_loss(input: Any, target: Any, weight: Any = None, size_average: Any = None,
             ignore_index: int = -100, reduce: Any = None, reduction: str = "mean") -> Any:
    """F.nll_loss: ``-input[target]`` weighted by class; the mean divides by the summed weights
    of the samples that are not ``ignore_index`` (torch's definition)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    losses, weights = _nll_terms(input, target, weight, ignore_index, "nll_loss")
    if reduction == "mean":
        return api.sum(losses) / api.sum(weights)
    return _reduce(losses, reduction, "nll_loss")


def _class_dim(shape: tuple, function: str) -> int:
    if not shape:
        raise ShapeError(f"{function}: the input must have a class dimension, got a scalar")
    return 0 if len(shape) == 1 else 1


def _nll_terms(logp: Any, target: Any, weight: Any, ignore_index: int,
               function: str) -> tuple[Any, Any]:
    """Per-sample ``-w[t] logp[t]`` (0 where ignored) and the weights ``w[t]`` (0 where ignored)."""
    shape = _shape(logp)
    class_dim = _class_dim(shape, function)
    target = np.asarray(raw(target))
    expected = shape[:class_dim] + shape[class_dim + 1:]
    if target.shape != expected:
        raise ShapeError(f"{function}: class-index targets must have shape {expected} for an "
                         f"input of shape {shape}, got {target.shape}")
    kept = target != ignore_index
    classes = shape[class_dim]
    if np.any((target[kept] < 0) | (target[kept] >= classes)):
        raise ShapeError(f"{function}: targets must be class indices in [0, {classes}), got "
                         f"{sorted(set(target[kept].tolist()))}")
    safe = np.where(kept, target, 0)  # ignored samples pick class 0, then weigh 0
    picked = _pick_classes(logp, safe, class_dim)
    weights = kept.astype(_dtype(logp)) if weight is None else \
        api.where(kept, api.reshape(weight, (-1,))[safe], 0.0)
    return -picked * weights, weights


def cross_entropy(input: Any, target: Any, weight: Any = None, size_average: Any = None,
                  ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Any:
    """F.cross_entropy of logits ``input`` (classes in dim 1, or dim 0 for one sample).

    Integer targets are class indices (``ignore_index``, ``weight`` and ``label_smoothing`` as
    torch); float targets of the input's shape are class probabilities, whose mean divides by
    the number of samples (not by the number of elements), as torch does.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("mean", "sum", "none"):
        raise _refuse("cross_entropy", f"reduction={reduction!r}", "use 'mean', 'sum' or 'none'")
    shape = _shape(input)
    class_dim = _class_dim(shape, "cross_entropy")
    classes = shape[class_dim]
    logp = torch_api.log_softmax(input, class_dim)
    w = None if weight is None else _class_weights(weight, len(shape), class_dim)
    if _dtype(target).kind == "f":
        return _probability_cross_entropy(logp, target, w, reduction, label_smoothing, class_dim)
    if _dtype(target).kind not in "iu":
        raise ShapeError(f"cross_entropy: targets must be class indices (integers) or class "
                         f"probabilities (floats), got dtype {_dtype(target)}")
    losses, weights = _nll_terms(logp, target, weight, ignore_index, "cross_entropy")
    nll = api.sum(losses) / api.sum(weights) if reduction == "mean" else \
        _reduce(losses, reduction, "cross_entropy")
    if not label_smoothing:
        return nll
    # torch: (1 - eps) * nll + eps / classes * (-sum_c w_c logp_c), ignored samples left out
    kept = np.asarray(raw(target)) != ignore_index
    smooth = -api.sum(logp if w is None else logp * w, axis=class_dim)
    smooth = api.where(kept, smooth, 0.0)
    smooth = api.sum(smooth) / api.sum(weights) if reduction == "mean" else \
        _reduce(smooth, reduction, "cross_entropy")
    return (1.0 - label_smoothing) * nll + smooth * (label_smoothing / classes)


def _probability_cross_entropy(logp: Any, target: Any, w: Any, reduction: str,
                               label_smoothing: float, class_dim: int) -> Any:
    shape = _shape(logp)
    if _shape(target) != shape:
        raise ShapeError(f"cross_entropy: class-probability targets must have the input's shape "
                         f"{shape}, got {_shape(target)}")
    classes = shape[class_dim]
    if label_smoothing:
        target = target * (1.0 - label_smoothing) + label_smoothing / classes
    terms = logp * target if w is None else logp * target * w
    if reduction == "mean":  # torch divides by the number of samples
        return -api.sum(terms) / float(int(np.prod(shape, dtype=np.int64)) // classes)
    if reduction == "sum":
        return -api.sum(terms)
    return -api.sum(terms, axis=class_dim)


HANDLERS: dict[str, Callable[..., Any]] = {
    "linear": linear, "conv1d": conv1d, "relu": relu, "leaky_relu": leaky_relu,
    "dropout": dropout, "flatten": flatten,
    "mse_loss": mse_loss, "cross_entropy": cross_entropy, "nll_loss": nll_loss,
}
torch_api.FUNCTIONAL_HANDLERS.update(HANDLERS)
