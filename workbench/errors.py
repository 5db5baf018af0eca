"""The exceptions workbench raises for misuse.

Every error is a subclass of ``ValueError`` or ``TypeError`` (so existing ``except`` clauses keep
working) and of :class:`WorkbenchError` (so callers can catch all of ours at once). Messages name
the argument, op or shape at fault and say what to do instead.
"""

from __future__ import annotations


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
