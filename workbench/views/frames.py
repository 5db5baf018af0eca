"""The states a backprop stepper shows: the forward pass node by node, then the backward steps.

Works on any document with ``nodes``, ``edges`` and a ``backward`` list (the tape's and the
graph's). Frame k of the forward pass has the values of the first k+1 nodes and no adjoints;
frame j of the backward pass has every value and each node's adjoint as accumulated by backward
steps 0..j (its latest ``total``; the output's seed from step 0). Constants count as known from
the start.

>>> import numpy as np, workbench as wb
>>> doc = wb.backprop(lambda x: np.sin(x) * x, 0.5).to_json()
>>> names = {n["id"]: f"#{n['id']}" for n in doc["nodes"]}
>>> fs = frames(doc, names)
>>> [(f.kind, f.node) for f in fs]
[('forward', 0), ('forward', 1), ('forward', 2), ('backward', 2), ('backward', 1), ('backward', 0)]
>>> sorted(fs[3].adjoints), sorted(fs[3].changed)       # the seed, and what mul pushed
([0, 1, 2], [0, 1, 2])
>>> print(fs[4].caption)
backward 2/3: #1 has its final adjoint 0.5; it adds 0.4388 to #0 (now 0.9182)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .svg import Box, short_number


@dataclass
class Frame:
    """What one step shows: the highlighted ``node``, the nodes whose values are known
    (``computed``), the adjoints so far (node -> JSON value), the ones this step changed."""

    kind: str  # "forward" or "backward"
    node: int
    computed: set[int]
    adjoints: dict[int, Any] = field(default_factory=dict)
    changed: set[int] = field(default_factory=set)
    caption: str = ""


def frames(doc: dict[str, Any], names: dict[int, str]) -> list[Frame]:
    """Every frame of ``doc``; ``names[node]`` is how captions refer to a node."""
    nodes = doc["nodes"]
    constants = {n["id"] for n in nodes if n["op"] == "const"}
    steps = [n for n in nodes if n["op"] != "const"]
    out: list[Frame] = []
    computed = set(constants)
    for k, n in enumerate(steps):
        computed = computed | {n["id"]}
        out.append(Frame("forward", n["id"], computed,
                         caption=f"forward {k + 1}/{len(steps)}: {names[n['id']]} = "
                                 f"{short_number(n['value'])}"))
    backward = doc.get("backward") or []
    adjoints: dict[int, Any] = {}
    everything = {n["id"] for n in nodes}
    for j, step in enumerate(backward):
        node = step["node"]
        changed = set()
        if j == 0:  # the seed
            adjoints = {node: step["adjoint"]}
            changed.add(node)
        else:
            adjoints = dict(adjoints)
        pushed = []
        for c in step["contributions"]:
            adjoints[c["to"]] = c["total"]
            changed.add(c["to"])
            pushed.append(f"adds {short_number(c['value'])} to {names.get(c['to'], c['to'])} "
                          f"(now {short_number(c['total'])})")
        what = "is the output: its adjoint is seeded with" if j == 0 else "has its final adjoint"
        caption = (f"backward {j + 1}/{len(backward)}: {names.get(node, node)} {what} "
                   f"{short_number(step['adjoint'])}")
        caption += "; it " + "; ".join(pushed) if pushed else " (nothing flows further)"
        out.append(Frame("backward", node, everything, adjoints, changed, caption))
    return out


def frame_boxes(doc: dict[str, Any], frame: Frame, labels: dict[int, str]) -> list[Box]:
    """The boxes to draw for ``frame``: the highlighted node, values known so far, adjoints."""
    boxes = []
    for n in doc["nodes"]:
        node = n["id"]
        known = node in frame.computed
        value = short_number(n["value"]) if known else ""
        adjoint = short_number(frame.adjoints.get(node))
        state = "current" if node == frame.node else ("" if known else "pending")
        tip = f"{labels[node]}\nvalue: {short_number(n['value'])}"
        if adjoint:
            tip += f"\nadjoint so far: {adjoint}"
        # room for the final texts, so that boxes keep their size from step to step
        room = max(len(short_number(n["value"])) + 2, len(short_number(n["adjoint"])) + 5)
        shape = "×".join(str(k) for k in n.get("shape") or ())  # array rows show their shape
        boxes.append(Box(node, labels[node], value, adjoint, tip, n["op"], state,
                         node in frame.changed, room, shape))
    return boxes
