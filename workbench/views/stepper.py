"""The backprop stepper: an ipywidgets panel over the forward steps, then the backward steps.

Imported only by ``BackpropView.widget()`` (``import workbench`` never loads ipywidgets). A Play
button and a slider (linked in the kernel, so driving either from Python works too), previous /
next buttons, the drawing of the graph re-rendered at each step (the current node outlined,
nodes not computed yet faded, adjoints as accumulated so far, the ones just changed in colour)
and a caption saying what the step did.

CSS classes: ``wb-backprop`` (the panel), ``wb-backprop-controls``, ``wb-backprop-picture``,
``wb-backprop-caption``; in the drawing ``wb-node``, ``wb-current``, ``wb-pending``,
``wb-changed``, ``wb-edge``.

>>> import numpy as np, workbench as wb
>>> stepper = wb.backprop(lambda x: np.sin(x) * x, 0.5).widget()
>>> stepper.highlighted, stepper.frame.kind
(0, 'forward')
>>> stepper.next_button.click(); stepper.highlighted
1
>>> stepper.slider.value = stepper.slider.max; stepper.highlighted, stepper.shown_adjoints[0]
(0, 0.9182168195493894)
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from .frames import Frame, frame_boxes


class BackpropStepper(widgets.VBox):
    """Steps through a :class:`~workbench.views.backprop_view.BackpropView`.

    Attributes tests and notebooks drive: ``slider`` (the step number), ``play``,
    ``prev_button``, ``next_button``; read ``frame``, ``highlighted`` (the node of the current
    step), ``shown_adjoints`` (node -> adjoint shown), ``picture`` (HTML widget with the SVG),
    ``caption``.
    """

    def __init__(self, view: Any, interval_ms: int = 900) -> None:
        self.view = view
        self.frames: list[Frame] = view.frames()
        self._labels = view.labels()
        last = max(len(self.frames) - 1, 0)
        self.play = widgets.Play(min=0, max=last, step=1, interval=interval_ms,
                                 description="Play", tooltip="play the steps")
        self.slider = widgets.IntSlider(min=0, max=last, value=0, description="step",
                                        continuous_update=True)
        widgets.link((self.play, "value"), (self.slider, "value"))
        self.prev_button = widgets.Button(description="◀ prev", tooltip="previous step")
        self.next_button = widgets.Button(description="next ▶", tooltip="next step")
        self.prev_button.on_click(lambda _: self._move(-1))
        self.next_button.on_click(lambda _: self._move(+1))
        self.caption = widgets.HTML()
        self.picture = widgets.HTML()
        controls = widgets.HBox([self.play, self.prev_button, self.slider, self.next_button])
        controls.add_class("wb-backprop-controls")
        self.caption.add_class("wb-backprop-caption")
        self.picture.add_class("wb-backprop-picture")
        title = widgets.HTML(f"<b>{html.escape(view.headline())}</b>")
        super().__init__([title, controls, self.caption, self.picture])
        self.add_class("wb-backprop")
        self.slider.observe(lambda change: self._show(change["new"]), names="value")
        self._show(0)

    # ----- state -----
    @property
    def frame(self) -> Frame:
        """The frame shown now."""
        return self.frames[self.slider.value]

    @property
    def highlighted(self) -> int:
        """The node of the step shown now (outlined in the drawing)."""
        return self.frame.node

    @property
    def shown_adjoints(self) -> dict[int, Any]:
        """node -> the adjoint the drawing shows now (JSON values; empty in the forward pass)."""
        return dict(self.frame.adjoints)

    # ----- behaviour -----
    def _move(self, delta: int) -> None:
        self.slider.value = min(max(self.slider.value + delta, self.slider.min), self.slider.max)

    def _show(self, k: int) -> None:
        if not self.frames:
            self.caption.value = "nothing was recorded"
            return
        frame = self.frames[k]
        doc = self.view._doc
        self.picture.value = self.view.svg(frame) if doc else ""
        self.caption.value = (f'<span style="font-family: monospace">'
                              f"{html.escape(frame.caption)}</span>")
        self.prev_button.disabled = k <= self.slider.min
        self.next_button.disabled = k >= self.slider.max

    def boxes(self) -> list[Any]:
        """The boxes drawn now (for tests: states and adjoint texts)."""
        return frame_boxes(self.view._doc, self.frame, self._labels)
