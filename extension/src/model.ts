/**
 * The view model: workbench's graph and tape documents read into one shape, and the pure
 * functions the renderer is built on (step logic, summaries, value formatting). No DOM here.
 *
 * Formats: `application/vnd.workbench.graph+json` and `application/vnd.workbench.tape+json`
 * (workbench/tape/schema.py), both with an optional `backward` list of steps.
 */

export const GRAPH_MIME = 'application/vnd.workbench.graph+json';
export const TAPE_MIME = 'application/vnd.workbench.tape+json';

/** A number, one of the strings "nan" / "inf" / "-inf", nested lists of those, or null. */
export type Tensor = number | string | null | Tensor[];

export interface ViewNode {
  id: number;
  op: string;
  /** What the node shows: the document's label, or the op name where the label is empty. */
  text: string;
  expression: string;
  shape: number[];
  value: Tensor;
  adjoint: Tensor;
  /** A tape entry's static parameters (axis, ...), as JSON text; "" when there are none. */
  params: string;
}

export interface ViewEdge {
  source: number;
  target: number;
  argnum: number;
}

export interface Contribution {
  to: number;
  argnum: number;
  value: Tensor;
  total: Tensor;
}

export interface BackwardStep {
  node: number;
  adjoint: Tensor;
  contributions: Contribution[];
}

export interface ViewDoc {
  kind: 'graph' | 'tape';
  title: string;
  nodes: ViewNode[];
  edges: ViewEdge[];
  inputs: number[];
  outputs: number[];
  /** The document says the producer already summarised it. */
  truncated: boolean;
  backward: BackwardStep[] | null;
}

/** Raised for a document this renderer cannot read; the message says what is wrong. */
export class DocumentError extends Error {}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function asInt(x: unknown, what: string): number {
  if (typeof x !== 'number' || !Number.isInteger(x)) {
    throw new DocumentError(`${what} must be an integer, got ${JSON.stringify(x)}`);
  }
  return x;
}

function asText(x: unknown): string {
  return typeof x === 'string' ? x : x === undefined || x === null ? '' : String(x);
}

function asTensor(x: unknown): Tensor {
  if (x === undefined) {
    return null;
  }
  if (x === null || typeof x === 'number' || typeof x === 'string') {
    return x;
  }
  if (Array.isArray(x)) {
    return x.map(asTensor);
  }
  return String(x);
}

/**
 * A tensor, or where it is null (left out: an array too big for the document) the producer's
 * text summary of it (`value_summary`, `adjoint_summary`...: "mean 0.12, min -1, max 2.3").
 * Tensors may be strings already ("nan"), so the summary is shown wherever the value would be.
 */
function tensorOrSummary(x: unknown, summary: unknown): Tensor {
  const t = asTensor(x);
  return t === null && typeof summary === 'string' && summary ? summary : t;
}

function asShape(x: unknown): number[] {
  return Array.isArray(x) ? x.filter(d => typeof d === 'number') : [];
}

function readBackward(raw: unknown, ids: Set<number>): BackwardStep[] | null {
  if (raw === undefined || raw === null) {
    return null;
  }
  if (!Array.isArray(raw)) {
    throw new DocumentError('"backward" must be a list of steps');
  }
  return raw.map((step, k) => {
    if (!isObject(step)) {
      throw new DocumentError(`backward step ${k} must be an object`);
    }
    const node = asInt(step.node, `backward[${k}].node`);
    if (!ids.has(node)) {
      throw new DocumentError(`backward[${k}] names node ${node}, which is not in "nodes"`);
    }
    const contributions = Array.isArray(step.contributions) ? step.contributions : [];
    return {
      node,
      adjoint: tensorOrSummary(step.adjoint, step.adjoint_summary),
      contributions: contributions.filter(isObject).map((c, i) => ({
        to: asInt(c.to, `backward[${k}].contributions[${i}].to`),
        argnum: typeof c.argnum === 'number' ? c.argnum : 0,
        value: tensorOrSummary(c.value, c.value_summary),
        total: tensorOrSummary(c.total, c.total_summary)
      }))
    };
  });
}

/**
 * Read a graph or tape document into a {@link ViewDoc}, or throw a {@link DocumentError}.
 * Edges that name unknown nodes are dropped (a renderer must not crash on them).
 */
export function readDocument(data: unknown, mimeType: string = GRAPH_MIME): ViewDoc {
  if (!isObject(data)) {
    throw new DocumentError('the document must be a JSON object');
  }
  const kind = mimeType === TAPE_MIME || data.schema === 'workbench.tape' ? 'tape' : 'graph';
  if (!Array.isArray(data.nodes)) {
    throw new DocumentError('the document has no "nodes" list');
  }
  const ids = new Set<number>();
  const nodes: ViewNode[] = data.nodes.map((n, i) => {
    if (!isObject(n)) {
      throw new DocumentError(`nodes[${i}] must be an object`);
    }
    const id = asInt(n.id, `nodes[${i}].id`);
    if (ids.has(id)) {
      throw new DocumentError(`node id ${id} appears twice`);
    }
    ids.add(id);
    const op = asText(n.op);
    return {
      id,
      op,
      text: asText(n.label) || op,
      expression: asText(n.expression),
      shape: asShape(n.shape),
      value: tensorOrSummary(n.value, n.value_summary),
      adjoint: tensorOrSummary(n.adjoint, n.adjoint_summary),
      params: isObject(n.params) && Object.keys(n.params).length ? JSON.stringify(n.params) : ''
    };
  });
  const rawEdges = Array.isArray(data.edges) ? data.edges : [];
  const edges: ViewEdge[] = rawEdges
    .filter(isObject)
    .map(e => ({
      source: e.source as number,
      target: e.target as number,
      argnum: typeof e.argnum === 'number' ? e.argnum : 0
    }))
    .filter(e => ids.has(e.source) && ids.has(e.target));
  const idList = (x: unknown): number[] =>
    Array.isArray(x) ? x.filter((i): i is number => typeof i === 'number' && ids.has(i)) : [];
  const outputs =
    kind === 'tape'
      ? typeof data.output === 'number' && ids.has(data.output)
        ? [data.output]
        : []
      : idList(data.outputs);
  return {
    kind,
    title: asText(data.title),
    nodes,
    edges,
    inputs: idList(data.inputs),
    outputs,
    truncated: data.truncated === true,
    backward: readBackward(data.backward, ids)
  };
}

/**
 * The adjoints shown after backward step `k` (0-based): the output's seed from step 0, then for
 * every contribution of steps 0..k the latest running `total` of the node it went to. A step's own
 * node adjoint is final when it is processed, so it is shown too. Nodes absent from the map have
 * no adjoint yet. Without steps (or k < 0) the map is empty.
 */
export function adjointsAtStep(doc: Pick<ViewDoc, 'backward'>, k: number): Map<number, Tensor> {
  const shown = new Map<number, Tensor>();
  const steps = doc.backward ?? [];
  const last = Math.min(k, steps.length - 1);
  for (let j = 0; j <= last; j++) {
    shown.set(steps[j].node, steps[j].adjoint);
    for (const c of steps[j].contributions) {
      shown.set(c.to, c.total);
    }
  }
  return shown;
}

/** The final adjoints, as the document's nodes carry them (null ones left out). */
export function finalAdjoints(doc: Pick<ViewDoc, 'nodes'>): Map<number, Tensor> {
  const shown = new Map<number, Tensor>();
  for (const n of doc.nodes) {
    if (n.adjoint !== null) {
      shown.set(n.id, n.adjoint);
    }
  }
  return shown;
}

/** The node processed at step k, and the nodes that step sends contributions to. */
export function stepFocus(doc: Pick<ViewDoc, 'backward'>, k: number): { active: number | null; targets: number[] } {
  const steps = doc.backward ?? [];
  if (k < 0 || k >= steps.length) {
    return { active: null, targets: [] };
  }
  return { active: steps[k].node, targets: steps[k].contributions.map(c => c.to) };
}

/**
 * What step k does, in words: "mul (ā = 1) sends 0.5 to sin (now 0.5), 0.4794 to x (now 0.4794)".
 * Nodes are named by their text (label, else op) and id where two share a text.
 */
export function stepDescription(doc: Pick<ViewDoc, 'backward' | 'nodes'>, k: number): string {
  const steps = doc.backward ?? [];
  if (k < 0 || k >= steps.length) {
    return '';
  }
  const texts = new Map(doc.nodes.map(n => [n.id, n.text]));
  const counts = new Map<string, number>();
  for (const t of texts.values()) {
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  const name = (id: number): string => {
    const t = texts.get(id) ?? `#${id}`;
    return (counts.get(t) ?? 0) > 1 ? `${t} #${id}` : t;
  };
  const step = steps[k];
  const head = `${name(step.node)} (ā = ${formatTensor(step.adjoint, 3)})`;
  if (!step.contributions.length) {
    return `${head}: no parents, nothing to pass back`;
  }
  const parts = step.contributions.map(
    c => `${formatTensor(c.value, 3)} to ${name(c.to)} (now ${formatTensor(c.total, 3)})`
  );
  return `${head} sends ${parts.join(', ')}`;
}

/** "step 3 of 7" for the 0-based step k of n steps. */
export function stepLabel(k: number, n: number): string {
  return `step ${k + 1} of ${n}`;
}

/** A short readable number: 4 significant digits, JSON's special strings as they are. */
export function formatNumber(x: number | string | null): string {
  if (x === null) {
    return '–';
  }
  if (typeof x === 'string') {
    return x;
  }
  if (Number.isInteger(x) && Math.abs(x) < 1e6) {
    return String(x);
  }
  const abs = Math.abs(x);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
    return x.toExponential(3);
  }
  return String(Number(x.toPrecision(4)));
}

/** A tensor as short text: a number, or the first few entries of the flattened array. */
export function formatTensor(t: Tensor, maxItems = 6): string {
  if (!Array.isArray(t)) {
    return formatNumber(t);
  }
  const flat: Array<number | string | null> = [];
  const walk = (x: Tensor): void => {
    if (Array.isArray(x)) {
      x.forEach(walk);
    } else {
      flat.push(x);
    }
  };
  walk(t);
  const shown = flat.slice(0, maxItems).map(formatNumber).join(', ');
  return flat.length > maxItems ? `[${shown}, … ${flat.length} values]` : `[${shown}]`;
}

/** Most characters of the adjoint line drawn inside a node (the tooltip has all of it). */
export const MAX_ADJOINT_CHARS = 24;

/** The adjoint line inside a node: "ā 0.9182", "ā [0.2, … 3 values]", a summary cut short. */
export function adjointLine(t: Tensor): string {
  const text = `ā ${formatTensor(t, 1)}`;
  return text.length > MAX_ADJOINT_CHARS ? `${text.slice(0, MAX_ADJOINT_CHARS - 1)}…` : text;
}

/** "2×3" for an array node, "" for a scalar. */
export function formatShape(shape: number[]): string {
  return shape.length ? shape.join('×') : '';
}

/** Largest document drawn node by node; past it the renderer draws a summary. */
export const MAX_DRAWN_NODES = 1500;
/** How many of the outputs' nearest ancestors a summary keeps. */
export const SUMMARY_NODES = 300;

export interface Summary {
  doc: ViewDoc;
  hidden: number;
}

/**
 * Keep at most `keep` nodes: the outputs and their nearest ancestors (breadth first against the
 * edges), with the edges among them. `hidden` counts the nodes left out.
 */
export function summarise(doc: ViewDoc, keep: number = SUMMARY_NODES): Summary {
  if (doc.nodes.length <= keep) {
    return { doc, hidden: 0 };
  }
  const parents = new Map<number, number[]>();
  for (const e of doc.edges) {
    const list = parents.get(e.target) ?? [];
    list.push(e.source);
    parents.set(e.target, list);
  }
  const seeds = doc.outputs.length ? doc.outputs : [doc.nodes[doc.nodes.length - 1].id];
  const kept = new Set<number>();
  const queue: number[] = [];
  for (const s of seeds) {
    if (!kept.has(s) && kept.size < keep) {
      kept.add(s);
      queue.push(s);
    }
  }
  for (let head = 0; head < queue.length && kept.size < keep; head++) {
    for (const p of parents.get(queue[head]) ?? []) {
      if (!kept.has(p) && kept.size < keep) {
        kept.add(p);
        queue.push(p);
      }
    }
  }
  const nodes = doc.nodes.filter(n => kept.has(n.id));
  const edges = doc.edges.filter(e => kept.has(e.source) && kept.has(e.target));
  const backward = doc.backward ? doc.backward.filter(s => kept.has(s.node)) : null;
  return {
    doc: { ...doc, nodes, edges, backward, inputs: doc.inputs.filter(i => kept.has(i)) },
    hidden: doc.nodes.length - nodes.length
  };
}
