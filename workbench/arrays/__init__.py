"""Array-level tracing: graph nodes are whole array operations (issue 12).

The element-level tracer (``workbench.tracing``) builds one graph node per scalar operation, so
every cost grows with the number of multiply-adds. This package traces the same user code with
one node per *array* operation (``v7 = v3 @ v5.T``):

* ``graph``     -- :class:`ArrayGraph`: nodes with shapes and concrete values, hash-consed;
* ``rules``     -- the structural ops (reductions, reshapes, indexing, contractions...) with
  their numpy printers and VJP rules; elementwise ops reuse the scalar op table (``ops.OPS``):
  its printers and partials, so conventions at kinks are the same on both paths;
* ``autodiff``  -- reverse mode over the graph (forward mode is the transpose of it);
* ``batching``  -- ``vmap`` by rule: a traced per-example subgraph re-emitted with a batch axis;
* ``codegen``   -- one numpy statement per op;
* ``traced``    -- :class:`ArrayTraced`, the value user code sees (numpy protocols, methods);
* ``compositions`` -- numpy functions written with the ops above (flip, roll, tile, repeat,
  stacking and splitting, prod, diagonal...): no op of their own;
* ``staging``   -- the top-level trace of a transform body and its compiled entry.

A program that uses something this level does not handle raises :class:`NotArrayLevel` inside
the trace, and the transform traces it again element by element: the element tracer remains the
complete (and slower) path, and the scalar graph it builds is what formulas, ``wb.steps`` and C
export use.
"""

from . import rules  # noqa: F401  (fills the op table)
from .graph import ArrayGraph, NotArrayLevel

__all__ = ["ArrayGraph", "NotArrayLevel"]
