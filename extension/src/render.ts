/**
 * The DOM of a graph view: SVG nodes and edges, pan and zoom, a hover tooltip and the backward
 * pass stepper. Everything that came from the kernel is inserted as text (textContent), never as
 * HTML, so a label like `<img onerror=...>` stays a label.
 */
import { chooseLayout, nodeTitle } from './layout';
import {
  adjointLine,
  adjointsAtStep,
  finalAdjoints,
  formatShape,
  formatTensor,
  MAX_DRAWN_NODES,
  stepFocus,
  stepDescription,
  stepLabel,
  summarise,
  Tensor,
  ViewDoc,
  ViewNode
} from './model';

const SVG_NS = 'http://www.w3.org/2000/svg';
const MIN_SCALE = 0.05;
const MAX_SCALE = 8;
const VIEW_HEIGHT = 480;
/** A long chain is drawn top to bottom in a taller view (see layout.chooseLayout). */
const TALL_VIEW_HEIGHT = 900;
/** Below this scale node labels are unreadable. */
const MIN_READABLE_SCALE = 0.35;
/** Width of a notebook output area, for the first view (the real width is known only once shown). */
const ASSUMED_WIDTH = 900;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    node.setAttribute(k, String(v));
  }
  return node;
}

function button(className: string, text: string, title: string): HTMLButtonElement {
  const b = el('button', `wb-button ${className}`, text);
  b.type = 'button';
  b.title = title;
  return b;
}

/** Pan (drag) and zoom (wheel, buttons) by rewriting one transform on the viewport group. */
class PanZoom {
  x = 0;
  y = 0;
  scale = 1;

  constructor(
    surface: SVGSVGElement,
    private readonly viewport: SVGGElement
  ) {
    let drag: { px: number; py: number; x: number; y: number } | null = null;
    surface.addEventListener('pointerdown', event => {
      drag = { px: event.clientX, py: event.clientY, x: this.x, y: this.y };
      surface.classList.add('wb-panning');
    });
    surface.addEventListener('pointermove', event => {
      if (drag) {
        this.x = drag.x + event.clientX - drag.px;
        this.y = drag.y + event.clientY - drag.py;
        this.apply();
      }
    });
    const stop = (): void => {
      drag = null;
      surface.classList.remove('wb-panning');
    };
    surface.addEventListener('pointerup', stop);
    surface.addEventListener('pointerleave', stop);
    surface.addEventListener(
      'wheel',
      event => {
        event.preventDefault();
        const box = surface.getBoundingClientRect();
        this.zoomAt(Math.exp(-event.deltaY / 400), event.clientX - box.left, event.clientY - box.top);
      },
      { passive: false }
    );
  }

  /** Multiply the scale by `factor`, keeping the point (cx, cy) of the surface where it is. */
  zoomAt(factor: number, cx: number, cy: number): void {
    const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * factor));
    const k = scale / this.scale;
    this.x = cx - (cx - this.x) * k;
    this.y = cy - (cy - this.y) * k;
    this.scale = scale;
    this.apply();
  }

  set(x: number, y: number, scale: number): void {
    this.x = x;
    this.y = y;
    this.scale = scale;
    this.apply();
  }

  apply(): void {
    this.viewport.setAttribute('transform', `translate(${this.x},${this.y}) scale(${this.scale})`);
  }
}

/** The tooltip's lines for a node, given the adjoint shown at the current step. */
export function tooltipLines(node: ViewNode, adjoint: Tensor | undefined): Array<[string, string]> {
  const lines: Array<[string, string]> = [['op', node.op]];
  if (node.text !== node.op) {
    lines.push(['label', node.text]);
  }
  if (node.expression) {
    lines.push(['expression', node.expression]);
  }
  if (node.params) {
    lines.push(['params', node.params]);
  }
  lines.push(['shape', formatShape(node.shape) || 'scalar']);
  lines.push(['value', formatTensor(node.value)]);
  lines.push(['adjoint', adjoint === undefined ? 'not reached yet' : formatTensor(adjoint)]);
  return lines;
}

export interface RenderResult {
  root: HTMLElement;
  /** Move the backward stepper to step k (no-op without steps). */
  setStep(k: number): void;
  /** Milliseconds spent on layout and DOM building. */
  renderMs: number;
}

/**
 * Build the view of a document. Documents above {@link MAX_DRAWN_NODES} nodes are summarised to
 * the outputs' nearest ancestors, with a note saying how many nodes are hidden.
 */
export function renderDocument(full: ViewDoc): RenderResult {
  const started = performance.now();
  const { doc, hidden } = full.nodes.length > MAX_DRAWN_NODES ? summarise(full) : { doc: full, hidden: 0 };
  const root = el('div', 'wb-graph-view');
  root.dataset.kind = doc.kind;

  const header = el('div', 'wb-header');
  const count = `${full.nodes.length} nodes, ${full.edges.length} edges`;
  header.appendChild(el('span', 'wb-title', doc.title || (doc.kind === 'tape' ? 'tape' : 'graph')));
  header.appendChild(el('span', 'wb-count', count));
  const zoomIn = button('wb-zoom-in', '+', 'zoom in');
  const zoomOut = button('wb-zoom-out', '−', 'zoom out');
  const zoomFit = button('wb-zoom-fit', 'fit', 'fit the graph in view');
  header.append(zoomIn, zoomOut, zoomFit);
  root.appendChild(header);

  if (hidden > 0 || doc.truncated) {
    const parts: string[] = [];
    if (hidden > 0) {
      parts.push(`${hidden} nodes hidden: showing the ${doc.nodes.length} nearest ancestors of the output`);
    }
    if (doc.truncated) {
      parts.push('the document itself was summarised by workbench');
    }
    root.appendChild(el('div', 'wb-note wb-hidden-note', parts.join('; ')));
  }

  const { placed, height: viewHeight } = chooseLayout(doc, ASSUMED_WIDTH, VIEW_HEIGHT, TALL_VIEW_HEIGHT, MIN_READABLE_SCALE);
  const surface = svg('svg', { class: 'wb-surface', width: '100%', height: viewHeight, role: 'img' }) as SVGSVGElement;
  surface.setAttribute('aria-label', `${doc.title || doc.kind}: ${count}`);
  surface.style.height = `${Math.min(viewHeight, Math.max(120, placed.height + 24))}px`;
  const defs = svg('defs', {});
  const marker = svg('marker', {
    id: `wb-arrow-${Math.random().toString(36).slice(2)}`,
    viewBox: '0 0 10 10',
    refX: 10,
    refY: 5,
    markerWidth: 7,
    markerHeight: 7,
    orient: 'auto-start-reverse'
  });
  marker.appendChild(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'wb-arrow' }));
  defs.appendChild(marker);
  surface.appendChild(defs);
  const viewport = svg('g', { class: 'wb-viewport' }) as SVGGElement;
  surface.appendChild(viewport);

  const edgeEls = placed.edges.map(e => {
    const d = e.points.map((p, i) => `${i ? 'L' : 'M'} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ');
    const path = svg('path', { class: 'wb-edge', d, 'marker-end': `url(#${marker.id})` });
    path.setAttribute('data-source', String(e.source));
    path.setAttribute('data-target', String(e.target));
    viewport.appendChild(path);
    return { edge: e, path };
  });

  const byId = new Map(doc.nodes.map(n => [n.id, n]));
  const outputs = new Set(doc.outputs);
  const inputs = new Set(doc.inputs);
  const nodeEls = new Map<number, { group: SVGGElement; adjoint: SVGTextElement }>();
  for (const p of placed.nodes) {
    const node = byId.get(p.id)!;
    const group = svg('g', { class: 'wb-node', transform: `translate(${p.x - p.width / 2},${p.y - p.height / 2})` }) as SVGGElement;
    group.setAttribute('data-node-id', String(p.id));
    group.setAttribute('data-op', node.op);
    if (outputs.has(p.id)) {
      group.classList.add('wb-output');
    }
    if (inputs.has(p.id) || node.op === 'input') {
      group.classList.add('wb-input');
    }
    group.appendChild(svg('rect', { width: p.width, height: p.height, rx: 6, ry: 6 }));
    const label = svg('text', { class: 'wb-node-label', x: p.width / 2, y: 16 });
    label.textContent = nodeTitle(node.text, node.shape);
    const adjoint = svg('text', { class: 'wb-node-adjoint', x: p.width / 2, y: 32 }) as SVGTextElement;
    group.append(label, adjoint);
    viewport.appendChild(group);
    nodeEls.set(p.id, { group, adjoint });
  }

  const tooltip = el('div', 'wb-tooltip');
  tooltip.hidden = true;
  const canvas = el('div', 'wb-canvas');
  canvas.append(surface, tooltip);

  const steps = doc.backward ?? [];
  let shown: Map<number, Tensor> = finalAdjoints(doc);
  const showAdjoints = (): void => {
    for (const [id, { adjoint }] of nodeEls) {
      const value = shown.get(id);
      adjoint.textContent = value === undefined ? '' : adjointLine(value);
    }
  };

  let hovered: number | null = null;
  const showTooltip = (id: number, event: MouseEvent): void => {
    hovered = id;
    tooltip.replaceChildren();
    for (const [key, value] of tooltipLines(byId.get(id)!, shown.get(id))) {
      const row = el('div', 'wb-tooltip-row');
      row.append(el('span', 'wb-tooltip-key', key), el('span', 'wb-tooltip-value', value));
      tooltip.appendChild(row);
    }
    const box = canvas.getBoundingClientRect();
    tooltip.style.left = `${event.clientX - box.left + 12}px`;
    tooltip.style.top = `${event.clientY - box.top + 12}px`;
    tooltip.hidden = false;
  };
  for (const [id, { group }] of nodeEls) {
    group.addEventListener('mouseenter', event => showTooltip(id, event));
    group.addEventListener('mousemove', event => showTooltip(id, event));
    group.addEventListener('mouseleave', () => {
      hovered = null;
      tooltip.hidden = true;
    });
  }

  let setStep = (_k: number): void => undefined;
  if (steps.length) {
    const bar = el('div', 'wb-stepper');
    const prev = button('wb-step-prev', '◀ prev', 'previous backward step');
    const next = button('wb-step-next', 'next ▶', 'next backward step');
    const slider = el('input', 'wb-step-slider');
    slider.type = 'range';
    slider.min = '0';
    slider.max = String(steps.length - 1);
    slider.step = '1';
    const label = el('span', 'wb-step-label');
    bar.append(el('span', 'wb-step-title', 'backward pass'), prev, slider, next, label);
    const detail = el('div', 'wb-step-detail');
    root.append(bar, detail);
    let current = 0;
    setStep = (k: number): void => {
      current = Math.max(0, Math.min(steps.length - 1, Math.round(k)));
      shown = adjointsAtStep(doc, current);
      const focus = stepFocus(doc, current);
      const targets = new Set(focus.targets);
      for (const [id, { group }] of nodeEls) {
        group.classList.toggle('wb-active', id === focus.active);
        group.classList.toggle('wb-target', targets.has(id));
        group.classList.toggle('wb-pending', !shown.has(id));
      }
      for (const { edge, path } of edgeEls) {
        path.classList.toggle('wb-edge-active', edge.target === focus.active && targets.has(edge.source));
      }
      slider.value = String(current);
      label.textContent = stepLabel(current, steps.length);
      detail.textContent = stepDescription(doc, current);
      prev.disabled = current === 0;
      next.disabled = current === steps.length - 1;
      root.dataset.step = String(current);
      showAdjoints();
      if (hovered !== null) {
        tooltip.hidden = true;
      }
    };
    // Left/right arrow keys step too, once the view has focus (click it).
    root.tabIndex = 0;
    root.addEventListener('keydown', event => {
      if (event.target instanceof HTMLInputElement) {
        return; // the slider handles its own keys
      }
      if (event.key === 'ArrowRight' || event.key === 'ArrowLeft') {
        event.preventDefault();
        setStep(current + (event.key === 'ArrowRight' ? 1 : -1));
      }
    });
    prev.addEventListener('click', () => setStep(current - 1));
    next.addEventListener('click', () => setStep(current + 1));
    slider.addEventListener('input', () => setStep(Number(slider.value)));
    setStep(0);
  } else {
    showAdjoints();
  }
  root.appendChild(canvas);

  const panZoom = new PanZoom(surface, viewport);
  const fit = (): void => {
    const width = surface.clientWidth || 800;
    const height = surface.clientHeight || viewHeight;
    const scale = Math.max(MIN_SCALE, Math.min(1, width / (placed.width || 1), height / (placed.height || 1)));
    panZoom.set((width - placed.width * scale) / 2, (height - placed.height * scale) / 2, scale);
  };
  zoomIn.addEventListener('click', () => panZoom.zoomAt(1.25, surface.clientWidth / 2, surface.clientHeight / 2));
  zoomOut.addEventListener('click', () => panZoom.zoomAt(0.8, surface.clientWidth / 2, surface.clientHeight / 2));
  zoomFit.addEventListener('click', fit);
  // Before the view is attached it has no size: start at a scale that fits a typical output area,
  // but never so small that labels cannot be read; then start at the output, where reading begins.
  const startScale = Math.min(1, ASSUMED_WIDTH / (placed.width || 1), viewHeight / (placed.height || 1));
  if (startScale >= MIN_READABLE_SCALE) {
    panZoom.set(0, 0, startScale);
  } else {
    const output = placed.nodes.find(n => outputs.has(n.id)) ?? placed.nodes[placed.nodes.length - 1];
    const s = MIN_READABLE_SCALE;
    panZoom.set(ASSUMED_WIDTH - 40 - (output.x + output.width / 2) * s, viewHeight / 2 - output.y * s, s);
    root.insertBefore(el('div', 'wb-note wb-zoom-note', 'large graph: shown around the output; "fit" or the wheel shows all of it'), canvas);
  }

  const renderMs = performance.now() - started;
  root.dataset.renderMs = renderMs.toFixed(1);
  root.dataset.nodes = String(doc.nodes.length);
  root.dataset.hidden = String(hidden);
  return { root, setStep, renderMs };
}
