"""The course notebooks, one module per notebook, each with ``FILENAME`` and ``cells()``.

``scripts/make_notebooks.py`` writes them to ``notebooks/``; ``tests/test_notebooks.py`` checks
that the committed files are what these modules generate and runs every notebook in a kernel.
"""

from . import (  # noqa: I001
    nb01_getting_started,
    nb02_exploring_derivatives,
    nb03_how_reverse_mode_works,
    nb04_per_sample_gradients,
    nb05_exporting_gradient_code,
    nb06_nonsmooth_and_control_flow,
    nb07_matrix_calculus,
    nb08_torch_modules,
)

MODULES = [nb01_getting_started, nb02_exploring_derivatives, nb03_how_reverse_mode_works,
           nb04_per_sample_gradients, nb05_exporting_gradient_code, nb06_nonsmooth_and_control_flow,
           nb07_matrix_calculus, nb08_torch_modules]
