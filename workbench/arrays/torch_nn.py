"""torch.nn.functional at array level: linear, conv1d and the losses, with torch's semantics.

Built from the handlers of ``torch_functions`` (which registers these); what they do not
implement raises :class:`NotArrayLevel`, and the element level takes over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import IndexOutOfRangeError
from . import traced as T
from .graph import NotArrayLevel
from .torch_functions import _log_softmax, _logsumexp, _no, _squeeze, _traced_arg, _unsqueeze
from .traced import ArrayTraced


def _linear(input, weight, bias=None):
    """F.linear: input @ weight.T + bias."""
    if np.ndim(weight) not in (1, 2):
        raise NotArrayLevel("linear weight shape")
    out = T.matmul(input, T.transpose(weight) if np.ndim(weight) == 2 else weight)
    return out if bias is None else out + bias


def _single(value, name: str) -> int:
    """An int option of conv1d (an int or a 1-tuple)."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise NotArrayLevel(f"conv1d {name}={value!r}")
    return int(value)


def _conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """F.conv1d (cross-correlation, groups=1) as im2col: the zero-padded input's windows are
    gathered by one integer index (its adjoint a scatter-add), then contracted with the weight."""
    _no("conv1d", groups=(groups, 1))
    x = _traced_arg(input) if isinstance(input, ArrayTraced) else input
    if np.ndim(weight) != 3 or np.ndim(x) not in (2, 3):
        raise NotArrayLevel("conv1d shapes")
    unbatched = np.ndim(x) == 2
    if unbatched:
        x = _unsqueeze(x, 0) if isinstance(x, ArrayTraced) else np.asarray(x)[None]
    stride, dilation = _single(stride, "stride"), _single(dilation, "dilation")
    _, channels, length = np.shape(x)
    out_channels, in_channels, k = np.shape(weight)
    if in_channels != channels or stride < 1 or dilation < 1:
        raise NotArrayLevel("conv1d channels or options")
    span = dilation * (k - 1)
    if padding == "valid":
        left = right = 0
    elif padding == "same":
        if stride != 1:
            raise NotArrayLevel("conv1d padding='same' with a stride")
        left, right = span // 2, span - span // 2
    else:
        left = right = _single(padding, "padding")
    n_out = (length + left + right - span - 1) // stride + 1
    if n_out < 1:
        raise NotArrayLevel("conv1d input shorter than the kernel")
    if left or right:
        zeros = [np.zeros(np.shape(x)[:2] + (n,), dtype=x.dtype) for n in (left, right)]
        x = T.concatenate([zeros[0], x, zeros[1]], axis=2)
    windows = (np.arange(n_out) * stride)[:, None] + np.arange(k)[None, :] * dilation
    patches = x[:, :, windows]  # (batch, channels, n_out, k)
    out = T.einsum("bcik,ock->boi", patches, weight)
    if bias is not None:
        out = out + _unsqueeze(bias, -1) if isinstance(bias, ArrayTraced) else \
            out + np.asarray(bias)[:, None]
    return _squeeze(out, 0) if unbatched else out


# ----- losses -----
def _reduced(losses: ArrayTraced, reduction: str, name: str) -> ArrayTraced:
    if reduction == "mean":
        return T._mean(losses)
    if reduction == "sum":
        return T._reduce("sum", losses)
    if reduction == "none":
        return losses
    raise NotArrayLevel(f"{name}: reduction={reduction!r}")


def _legacy_reduction(size_average, reduce, reduction: str) -> str:
    if size_average is None and reduce is None:
        return reduction
    return "none" if reduce is False else "sum" if size_average is False else "mean"


def _mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    _no("mse_loss", weight=(weight, None))
    if np.shape(input) != np.shape(target):
        raise NotArrayLevel("mse_loss of different shapes (torch broadcasts with a warning)")
    error = T.elementwise("sub", input, target)
    return _reduced(error * error, _legacy_reduction(size_average, reduce, reduction), "mse_loss")


def _cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                   reduce=None, reduction="mean", label_smoothing=0.0):
    """F.cross_entropy: logsumexp(x_i) - x_i[t_i] per sample for class-index targets,
    -sum_c t_ic log_softmax(x_i)_c for class-probability targets (the input's shape)."""
    _no("cross_entropy", weight=(weight, None), label_smoothing=(label_smoothing, 0.0))
    x = _traced_arg(input)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if x.ndim not in (1, 2):
        raise NotArrayLevel("cross_entropy of more than 2 dims")
    integer_labels = isinstance(target, ArrayTraced) and target.dtype.kind in "iu"
    if not integer_labels and (isinstance(target, ArrayTraced) or
                               np.asarray(target).dtype.kind == "f"):
        if np.shape(target) != x.shape:
            raise NotArrayLevel("cross_entropy probability targets of another shape")
        losses = T._reduce("sum", T.elementwise("neg", _log_softmax(x, -1) * target), x.ndim - 1)
        if reduction == "mean" and x.ndim == 2:  # torch divides by the batch size here
            return T._reduce("sum", losses) / float(x.shape[0])
        return _reduced(losses, reduction, "cross_entropy")
    if not integer_labels:
        if np.asarray(target).dtype.kind not in "iu":
            raise NotArrayLevel("cross_entropy targets")
        target = np.asarray(target, dtype=np.int64)
    if x.ndim == 1 and np.ndim(target) == 0:
        rows, classes = None, x.shape[0]
    elif x.ndim == 2 and np.shape(target) == x.shape[:1]:
        rows, classes = x.shape[0], x.shape[1]
    else:
        raise NotArrayLevel("cross_entropy shapes")
    _check_labels(target, classes, ignore_index)
    if integer_labels or (target == ignore_index).any():
        return _ignoring(x, target, rows, ignore_index, reduction)
    if rows is None:
        picked = x[int(target)]
    else:
        picked = x[np.arange(rows), target]
    losses = _logsumexp(x, -1) - picked
    return _reduced(losses, reduction, "cross_entropy")


def _ignoring(x: ArrayTraced, labels, rows: int | None, ignore_index: int,
              reduction: str) -> ArrayTraced:
    """Class-index cross entropy that leaves out the samples labelled ``ignore_index``, as
    torch does: their loss is 0 and ``mean`` divides by the number of the others (0/0 = nan
    when all are left out; their gradient is 0). Used for traced labels (vmap: which are
    ignored is not known while tracing one example) and for concrete ones that need it."""
    keep = labels != ignore_index
    if isinstance(labels, ArrayTraced):  # an integer 0 where ignored, so the gather is valid
        g = labels.graph
        safe = ArrayTraced(g, g.where(keep.node, labels.node, g.const(np.int64(0))))
    else:
        safe = np.where(keep, labels, 0)
    picked = x[safe] if rows is None else x[np.arange(rows), safe]
    losses = T.where(keep, _logsumexp(x, -1) - picked, 0.0)
    if reduction != "mean":
        return _reduced(losses, reduction, "cross_entropy")
    total = T._reduce("sum", losses)
    if isinstance(keep, ArrayTraced):
        count = T._reduce("sum", T.astype(keep, np.float64))
        # total / 0 would send an infinite cotangent into the zeros of the left-out samples
        # (nan); torch's gradient there is 0, its value nan.
        mean = total / T.elementwise("maximum", count, 1.0)
        return T.where(count > 0.0, mean, np.nan)
    count = int(np.count_nonzero(keep))
    return total / float(count) if count else T.where(False, total, np.nan)


def _check_labels(labels: np.ndarray | ArrayTraced, classes: int, ignore_index: int) -> None:
    """torch raises for a class label outside ``[0, classes)`` (other than ``ignore_index``)
    where numpy's indexing would wrap a negative one silently, so labels are checked. Concrete
    labels are checked here. Traced ones (labels mapped by ``vmap``: the trace sees one
    example's) become checks of the compiled version (``ArrayGraph.require``), which ``vmap``
    tests on every example's label while tracing: labels are static data of the compiled
    version (part of its cache key), so that test is exact, and the guard keeps it exact if
    they ever become inputs. Refusing to the element level would not help: it has no
    cross_entropy, so its error would not name the label."""
    def out_of_range(detail: str) -> IndexOutOfRangeError:
        return IndexOutOfRangeError(
            f"cross_entropy: {detail} is out of bounds for {classes} classes: class-index "
            f"targets must be integers in [0, {classes}), or ignore_index={ignore_index} for "
            "a sample left out of the loss")

    if not isinstance(labels, ArrayTraced):
        bad = labels[((labels < 0) | (labels >= classes)) & (labels != ignore_index)]
        if bad.size:
            raise out_of_range(f"target {int(bad.flat[0])}")
        return
    valid = ((labels >= 0) & (labels < classes)) | (labels == ignore_index)
    if valid.ndim:
        valid = T._reduce("amin", valid)
    labels.graph.require(valid.node, out_of_range("a target (class label) of the batch"))


HANDLERS: dict[str, Callable[..., Any]] = {
    "linear": _linear, "conv1d": _conv1d, "mse_loss": _mse_loss, "cross_entropy": _cross_entropy,
}
