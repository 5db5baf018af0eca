"""The numeric tape: an independent reverse-mode gradient over numpy, readable end to end.

The same user function that ``wb.grad`` traces runs here on :class:`TapeArray` values (numpy
ufuncs and functions, operators, indexing, torch-style methods, ``wb.*`` functions). Every op
appends a row to a :class:`Tape` (a Wengert list); the backward pass walks it in reverse with the
hand-written numpy VJPs of ``vjps.py``. It shares op *names* with the symbolic side and none of
its derivative code, which makes it the witness ``wb.check`` compares against.

Modules, in reading order: ``core`` (the engine), ``forward`` (op values), ``vjps`` (the rules),
``numpy_api``, ``torch_api`` and ``methods`` (how numpy, torch and method calls reach the ops),
``torch_nn`` (torch.nn.functional: linear, conv1d, the losses), ``torch_tensor`` (torch leaves
enter as tensors, so ``torch.func.functional_call(model, params, (x,))`` runs on the tape),
``transforms`` (grad, grad_and_value, record), ``view`` and ``schema`` (text, HTML and JSON views).

``wb.tape.grad`` nests (``grad(grad(f))``): the backward pass of an inner tape is recorded on the
outer one.

>>> import workbench as wb, numpy as np
>>> wb.tape.grad(lambda w, x: np.tanh(x @ w).sum())(np.ones(2), np.eye(2)).round(4).tolist()
[0.42, 0.42]
>>> tape = wb.tape.record(lambda x: wb.relu(x).sum(), np.array([-1.0, 2.0]))
>>> [e.op for e in tape.entries], tape.gradient.tolist()
(['input', 'relu', 'sum'], [0.0, 1.0])
"""

from __future__ import annotations

from . import methods as _methods  # noqa: F401  (installs operators and methods on TapeArray)
from . import vjps as _vjps  # noqa: F401  (fills the VJP table)
from .core import Entry, Tape, TapeArray
from .schema import MIME_TYPE, SCHEMA, SCHEMA_VERSION
from .transforms import grad, grad_and_value, record

__all__ = ["Entry", "Tape", "TapeArray", "grad", "grad_and_value", "record", "MIME_TYPE", "SCHEMA",
           "SCHEMA_VERSION"]
