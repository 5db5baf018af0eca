import { describe, expect, it } from 'vitest';

import {
  adjointLine,
  adjointsAtStep,
  DocumentError,
  finalAdjoints,
  formatNumber,
  formatTensor,
  GRAPH_MIME,
  readDocument,
  stepDescription,
  stepFocus,
  stepLabel,
  summarise,
  TAPE_MIME
} from '../src/model';
import { arraySummaries, chain, sinTimesX, X } from './fixtures';

describe('readDocument', () => {
  it('reads a tape: label, else op; output becomes outputs', () => {
    const doc = readDocument(sinTimesX(), TAPE_MIME);
    expect(doc.kind).toBe('tape');
    expect(doc.nodes.map(n => n.text)).toEqual(['x', 'sin', 'mul']);
    expect(doc.outputs).toEqual([2]);
    expect(doc.edges).toHaveLength(3);
    expect(doc.backward).toHaveLength(3);
  });

  it('drops edges to unknown nodes and keeps shapes', () => {
    const raw = chain(3) as any;
    raw.edges.push({ source: 0, target: 99, argnum: 0 });
    raw.nodes[1].shape = [2, 3];
    const doc = readDocument(raw, GRAPH_MIME);
    expect(doc.edges).toHaveLength(2);
    expect(doc.nodes[1].shape).toEqual([2, 3]);
  });

  it('rejects what is not a document, naming the problem', () => {
    expect(() => readDocument('nope')).toThrow(DocumentError);
    expect(() => readDocument({ edges: [] })).toThrow(/nodes/);
    expect(() => readDocument({ nodes: [{ id: 1 }, { id: 1 }] })).toThrow(/twice/);
    expect(() => readDocument({ nodes: [{ id: 'a' }] })).toThrow(/integer/);
    expect(() => readDocument({ nodes: [{ id: 0 }], backward: [{ node: 5 }] })).toThrow(/node 5/);
  });
});

describe('backward steps (f = sin(x)*x at x = 0.5, worked by hand)', () => {
  const doc = readDocument(sinTimesX(), TAPE_MIME);

  it('step 0: the output seed and its two contributions', () => {
    const a = adjointsAtStep(doc, 0);
    expect(a.get(2)).toBe(1);
    expect(a.get(1)).toBeCloseTo(X, 12); // d(sin*x)/d sin = x
    expect(a.get(0)).toBeCloseTo(Math.sin(X), 12); // the direct path only, so far
  });

  it('step 1: x has accumulated both paths', () => {
    const a = adjointsAtStep(doc, 1);
    expect(a.get(0)).toBeCloseTo(Math.sin(X) + X * Math.cos(X), 12);
    expect(a.get(1)).toBeCloseTo(X, 12);
  });

  it('the last step equals the final adjoints; no steps shows nothing', () => {
    const last = adjointsAtStep(doc, 2);
    const final = finalAdjoints(doc);
    for (const [id, value] of final) {
      expect(last.get(id)).toBeCloseTo(value as number, 12);
    }
    expect(adjointsAtStep({ backward: null }, 3).size).toBe(0);
    expect(adjointsAtStep(doc, -1).size).toBe(0);
  });

  it('describes each step in words, with the numbers of the hand computation', () => {
    const s = Math.sin(X);
    const fmt = (x: number): string => String(Number(x.toPrecision(4)));
    expect(stepDescription(doc, 0)).toBe(`mul (ā = 1) sends 0.5 to sin (now 0.5), ${fmt(s)} to x (now ${fmt(s)})`);
    const both = s + X * Math.cos(X);
    expect(stepDescription(doc, 1)).toBe(`sin (ā = 0.5) sends ${fmt(X * Math.cos(X))} to x (now ${fmt(both)})`);
    expect(stepDescription(doc, 2)).toBe(`x (ā = ${fmt(both)}): no parents, nothing to pass back`);
    expect(stepDescription(doc, 3)).toBe('');
  });

  it('focus and label', () => {
    expect(stepFocus(doc, 0)).toEqual({ active: 2, targets: [1, 0] });
    expect(stepFocus(doc, 2)).toEqual({ active: 0, targets: [] });
    expect(stepFocus(doc, 3)).toEqual({ active: null, targets: [] });
    expect(stepLabel(0, 3)).toBe('step 1 of 3');
  });
});

describe('formatting', () => {
  it('numbers', () => {
    expect(formatNumber(0.9182267)).toBe('0.9182');
    expect(formatNumber(3)).toBe('3');
    expect(formatNumber('nan')).toBe('nan');
    expect(formatNumber(null)).toBe('–');
    expect(formatNumber(1.5e-7)).toBe('1.500e-7');
  });
  it('arrays are flattened and cut', () => {
    expect(formatTensor([[1, 2], [3, 4]])).toBe('[1, 2, 3, 4]');
    expect(formatTensor([1, 2, 3, 4, 5, 6, 7, 8], 2)).toBe('[1, 2, … 8 values]');
  });
});

describe('summarise', () => {
  it('keeps the output and its nearest ancestors', () => {
    const doc = readDocument(chain(2000));
    const { doc: small, hidden } = summarise(doc, 300);
    expect(small.nodes).toHaveLength(300);
    expect(hidden).toBe(1700);
    expect(small.nodes.map(n => n.id)).toContain(1999);
    expect(Math.min(...small.nodes.map(n => n.id))).toBe(1700);
    expect(small.edges).toHaveLength(299);
  });
});

describe('array-level documents: big values come as null plus a text summary', () => {
  const doc = readDocument(arraySummaries(), GRAPH_MIME);

  it('nodes show the summary where the value or adjoint is null, and keep small ones', () => {
    expect(doc.nodes[0].value).toBe('mean 1, min 1, max 1');
    expect(doc.nodes[1].adjoint).toBe('mean 2, min 2, max 2');
    expect(doc.nodes[2].value).toEqual([[60], [60]]);
    expect(doc.nodes[1].shape).toEqual([60, 1]);
    expect(formatTensor(doc.nodes[0].value)).toBe('mean 1, min 1, max 1');
  });

  it('steps carry the summaries of their adjoints, contributions and totals', () => {
    expect(adjointsAtStep(doc, 1).get(1)).toBe('mean 2, min 2, max 2');
    expect(adjointsAtStep(doc, 3).get(0)).toBe('mean 1, min 1, max 1');
    expect(stepDescription(doc, 1)).toContain('mean 2, min 2, max 2 to W');
  });

  it('null without a summary stays null; unknown fields are ignored', () => {
    const raw = arraySummaries() as any;
    delete raw.nodes[0].value_summary;
    raw.nodes[0].future_field = { anything: 1 };
    expect(readDocument(raw, GRAPH_MIME).nodes[0].value).toBeNull();
  });

  it('the adjoint line inside a node is cut short', () => {
    expect(adjointLine(0.5)).toBe('ā 0.5');
    const long = adjointLine('mean 0.001563, min -0.01562, max 0');
    expect(long).toHaveLength(24);
    expect(long.startsWith('ā mean 0.001563')).toBe(true);
    expect(long.endsWith('…')).toBe(true);
  });
});
