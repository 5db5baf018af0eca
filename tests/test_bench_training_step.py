"""bench_training_step's contenders compute the same gradient (checked against torch.func inside
``contenders``) and step through different batches. No test here looks at a time."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_contenders_agree_with_torch_func_and_take_new_batches(dtype):
    require("torch")
    require("jax")
    from benchmarks.bench_training_step import contenders

    runs = contenders(dtype)  # raises if a contender's gradient differs from torch.func's
    assert set(runs) == {"workbench numpy", "workbench torch module", "jax.jit", "torch.func",
                         "hand numpy"}
    first, second = runs["hand numpy"](), runs["hand numpy"]()
    assert not np.allclose(first[0], second[0])  # each call is the next batch
