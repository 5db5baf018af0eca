/**
 * Graph layout with dagre: positions for nodes and polyline points for edges. No DOM here.
 */
import { Graph, layout } from '@dagrejs/dagre';
import type { EdgeLabel, GraphLabel, NodeLabel } from '@dagrejs/dagre';

import { formatShape, ViewDoc } from './model';

export const NODE_HEIGHT = 40;
const CHAR_WIDTH = 7.5;
const MIN_WIDTH = 44;
const MAX_LABEL_CHARS = 24;
const BIG_GRAPH = 400;

export interface PlacedNode {
  id: number;
  /** Centre of the node box. */
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PlacedEdge {
  source: number;
  target: number;
  argnum: number;
  points: Array<{ x: number; y: number }>;
}

export interface Layout {
  nodes: PlacedNode[];
  edges: PlacedEdge[];
  width: number;
  height: number;
}

/** The text drawn on a node's first line: its label (or op), and an array node's shape. */
export function nodeTitle(text: string, shape: number[]): string {
  const short = text.length > MAX_LABEL_CHARS ? `${text.slice(0, MAX_LABEL_CHARS - 1)}…` : text;
  const dims = formatShape(shape);
  return dims ? `${short} [${dims}]` : short;
}

/** Lay out the document left to right (inputs on the left, the output on the right), or top
 * to bottom ('TB': a long chain of array ops reads better as a column). */
export function layoutGraph(doc: Pick<ViewDoc, 'nodes' | 'edges'>, rankdir: 'LR' | 'TB' = 'LR'): Layout {
  const g = new Graph<GraphLabel, NodeLabel, EdgeLabel>({ multigraph: true });
  // network-simplex ranks best but costs the most; on big graphs tight-tree is ~30 % faster.
  const ranker = doc.nodes.length > BIG_GRAPH ? 'tight-tree' : 'network-simplex';
  g.setGraph({ rankdir, nodesep: 14, ranksep: 36, edgesep: 8, marginx: 12, marginy: 12, ranker });
  for (const n of doc.nodes) {
    // room for the adjoint line too: "ā -1.234e-5", or "ā [0.2087, … 3 values]" for arrays
    const chars = Math.max(nodeTitle(n.text, n.shape).length, n.shape.length ? 17 : 8);
    g.setNode(String(n.id), { width: Math.max(MIN_WIDTH, chars * CHAR_WIDTH + 16), height: NODE_HEIGHT });
  }
  doc.edges.forEach((e, i) => {
    g.setEdge(String(e.source), String(e.target), {}, `e${i}`);
  });
  layout(g);
  const nodes: PlacedNode[] = doc.nodes.map(n => {
    const placed = g.node(String(n.id));
    return { id: n.id, x: placed.x ?? 0, y: placed.y ?? 0, width: placed.width, height: placed.height };
  });
  const edges: PlacedEdge[] = doc.edges.map((e, i) => {
    const placed = g.edge({ v: String(e.source), w: String(e.target), name: `e${i}` });
    return { ...e, points: (placed?.points ?? []).map(p => ({ x: p.x, y: p.y })) };
  });
  const size = g.graph();
  return { nodes, edges, width: size.width ?? 0, height: size.height ?? 0 };
}

/** The scale at which a layout fits a view of this size (never above 1). */
export function fitScale(placed: Layout, width: number, height: number): number {
  return Math.min(1, width / (placed.width || 1), height / (placed.height || 1));
}

/**
 * Left to right in a view of ``height``, unless that is too small to read and a taller view
 * (``tallHeight``) top to bottom reads better: a 20-op chain (an MLP's forward pass at array
 * level) is one long row, unreadable when fitted, but a readable column.
 */
export function chooseLayout(
  doc: Pick<ViewDoc, 'nodes' | 'edges'>,
  width: number,
  height: number,
  tallHeight: number,
  readable: number
): { placed: Layout; height: number } {
  const wide = layoutGraph(doc, 'LR');
  const wideScale = fitScale(wide, width, height);
  if (wideScale >= readable || doc.nodes.length > BIG_GRAPH) {
    return { placed: wide, height };
  }
  const tall = layoutGraph(doc, 'TB');
  if (fitScale(tall, width, tallHeight) > wideScale) {
    return { placed: tall, height: tallHeight };
  }
  return { placed: wide, height };
}
