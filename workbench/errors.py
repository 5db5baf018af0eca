"""The exceptions workbench raises for misuse.

Every error is a subclass of ``ValueError`` or ``TypeError`` (so existing ``except`` clauses keep
working) and of :class:`WorkbenchError` (so callers can catch all of ours at once). Messages name
the argument, op or shape at fault and say what to do instead.

Tracebacks end in the user's code: a ``WorkbenchError`` leaving a public entry point
(:func:`api_boundary`) loses workbench's internal frames -- only the frame that raised it stays,
as JAX does -- unless ``wb.config.show_internal_frames = True`` or the environment variable
``WORKBENCH_TRACEBACK=full`` asks for all of them.
"""

from __future__ import annotations

import functools
import os
import types
from collections.abc import Callable
from typing import TypeVar


class WorkbenchError(Exception):
    """Base class of every error workbench raises on purpose."""


class ArgnumsError(WorkbenchError, ValueError):
    """``argnums`` is out of range, duplicated, empty or not an int."""


class ArgnumsTypeError(WorkbenchError, TypeError):
    """``argnums`` has the wrong type (for example a float or a string)."""


class NonScalarOutputError(WorkbenchError, ValueError):
    """``grad`` was asked to differentiate a function whose output is not a scalar."""


class InputTypeError(WorkbenchError, TypeError):
    """An input cannot be differentiated (an integer, a bool, a string...)."""


class OutputTypeError(WorkbenchError, TypeError):
    """The function returned something a transform cannot handle."""


class HasAuxError(WorkbenchError, TypeError):
    """``has_aux=True`` but the function did not return an ``(output, aux)`` pair."""


class UnsupportedOperationError(WorkbenchError, TypeError):
    """A numpy/torch function or Python operation that tracing does not support."""


class TracedConversionError(WorkbenchError, TypeError):
    """A traced value was converted to a plain Python or numpy number, which would lose gradients."""


class LeakedTracerError(WorkbenchError, ValueError):
    """A traced value escaped from the call that created it and was used in another one."""


class ShapeError(WorkbenchError, ValueError):
    """Operands have shapes that do not fit together."""


class BudgetExceededError(WorkbenchError, ValueError):
    """A trace or expression grew past the hard size budget."""


class OutputPathError(WorkbenchError, ValueError):
    """A file cannot be written where it was asked for (a missing directory, a directory...)."""


# ----- tracebacks that end in the user's code -----

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_NOTE = ("(workbench removed {n} of its internal frames from this traceback; set "
         "wb.config.show_internal_frames = True or the environment variable "
         "WORKBENCH_TRACEBACK=full to see them)")

F = TypeVar("F", bound=Callable)


def show_internal_frames() -> bool:
    """Whether tracebacks keep workbench's internal frames (the config switch, or the env)."""
    from .config import config

    return config.show_internal_frames or os.environ.get("WORKBENCH_TRACEBACK", "") == "full"


def _internal(tb: types.TracebackType) -> bool:
    return tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR)


def _frames(tb: types.TracebackType | None) -> list[types.TracebackType]:
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    return frames


def _rebuilt(frames: list[types.TracebackType]) -> types.TracebackType | None:
    """A traceback of the user's frames among ``frames``, and the innermost one."""
    kept = [t for k, t in enumerate(frames) if not _internal(t) or k == len(frames) - 1]
    rebuilt = None
    for t in reversed(kept):
        rebuilt = types.TracebackType(rebuilt, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return rebuilt


class OperationError(WorkbenchError, ValueError):
    """numpy or torch refused an operation on traced values (a shape, an index or an axis that
    does not fit), as it would on plain arrays; the message says where in the user's code."""


class OperationIndexError(OperationError, IndexError):
    """:class:`OperationError` for an index or axis out of range (still an ``IndexError``)."""


class IndexOutOfRangeError(OperationIndexError):
    """A class label or torch index outside the range torch accepts, found by workbench's own
    check (numpy would wrap a negative one silently; torch raises)."""


# The modules that run numpy/torch operations on traced values for the user's code.
_TRACED_ARRAY_LAYER = frozenset({"tracing.py", "array_api.py", "torch_support.py",
                                 "functions.py"})


def _as_operation_error(error: Exception, frames: list) -> OperationError | None:
    """A user's operation on traced values that numpy refused (``x.reshape(3)`` of 2
    elements, ``x[5]``...) as a workbench error; None for anything else (the user's own
    exceptions, and errors from deeper inside workbench, which keep their type)."""
    if not isinstance(error, (ValueError, IndexError)):
        return None
    # The innermost call from outside workbench into its traced-array layer (numpy's own
    # frames may follow it: np.stack, np.swapaxes... run on the id arrays).
    calls = [k for k in range(len(frames) - 1) if not _internal(frames[k]) and
             _internal(frames[k + 1]) and
             os.path.basename(frames[k + 1].tb_frame.f_code.co_filename) in _TRACED_ARRAY_LAYER]
    if not calls:
        return None
    caller = frames[calls[-1]]
    code = caller.tb_frame.f_code
    kind = OperationIndexError if isinstance(error, IndexError) else OperationError
    return kind(f"{error} ({type(error).__name__} from an operation on traced values in "
                f"{code.co_name}, {os.path.basename(code.co_filename)} line {caller.tb_lineno}; "
                "the shapes, indices or axes used there do not fit the arrays)")


def error_for_user(error: Exception) -> Exception | None:
    """What a public entry point raises for ``error``, caught in the frame that calls into
    workbench: the same ``WorkbenchError`` with a trimmed traceback, numpy's refusal of an
    operation on traced values as an :class:`OperationError`, or None (re-raise it as it is:
    the user's own exceptions, and everything when internal frames are asked for). The caller
    raises the result with ``raise``, which puts its own frame back in front."""
    if show_internal_frames():
        return None
    frames = _frames(error.__traceback__.tb_next if error.__traceback__ else None)
    if not isinstance(error, WorkbenchError):
        converted = _as_operation_error(error, frames)
        if converted is None:
            return None
        converted.original = error  # type: ignore[attr-defined]
        converted.__cause__, converted.__suppress_context__ = None, True
        converted.add_note(_NOTE.format(n=sum(map(_internal, frames[:-1]))))
        converted._wb_trimmed = True  # type: ignore[attr-defined]
        return converted.with_traceback(_rebuilt(frames))
    dropped = sum(map(_internal, frames[:-1]))
    if dropped and not getattr(error, "_wb_trimmed", False):
        error._wb_trimmed = True  # type: ignore[attr-defined]  # one note, however nested
        error.add_note(_NOTE.format(n=dropped))
    return error.with_traceback(_rebuilt(frames))


def api_boundary(func: F) -> F:
    """Decorate a public entry point: a ``WorkbenchError`` it raises reaches the caller with a
    traceback trimmed to the user's frames and the one that raised it. numpy's refusal of an
    operation on traced values (a ``ValueError``/``IndexError`` raised right under the user's
    call) becomes an :class:`OperationError` that says where.

    >>> @api_boundary
    ... def entry(x):
    ...     raise ShapeError(f"x has shape {x}")
    >>> entry(3)
    Traceback (most recent call last):
    ...
    workbench.errors.ShapeError: x has shape 3
    """

    @functools.wraps(func)
    def boundary(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception as error:
            for_user = error_for_user(error)
            if for_user is None:
                raise
            raise for_user  # noqa: B904 - its cause and context are set by error_for_user
    return boundary  # type: ignore[return-value]
