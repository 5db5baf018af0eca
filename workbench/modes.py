"""``no_grad`` and ``enable_grad``: switch gradient recording inside a traced function.

Inside a function being transformed, results computed under ``no_grad()`` are constants for
differentiation (their values still follow the inputs). Around a transform call it has no effect:
a transform's result does not depend on a context manager outside the function (torch.func's
rule). ``torch.no_grad()`` behaves the same way on traced values.

>>> import workbench as wb
>>> def f(x):
...     with wb.no_grad():
...         c = x ** 2
...     return x - c
>>> float(wb.grad(f)(3.0))
1.0
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .tracing import STATE, grad_enabled


@contextlib.contextmanager
def _grad_mode(enabled: bool) -> Iterator[None]:
    saved = STATE.grad_enabled
    STATE.grad_enabled = enabled
    try:
        yield
    finally:
        STATE.grad_enabled = saved


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Context manager: what is computed inside is a constant for differentiation."""
    return _grad_mode(False)


def enable_grad() -> contextlib.AbstractContextManager[None]:
    """Context manager: switch gradient recording back on inside a ``no_grad`` block."""
    return _grad_mode(True)


def is_grad_enabled() -> bool:
    """False inside ``wb.no_grad()`` or ``torch.no_grad()``: what the tape and tracer both read."""
    return grad_enabled()
