import { describe, expect, it } from 'vitest';

import { chooseLayout, fitScale, layoutGraph } from '../src/layout';
import { MAX_DRAWN_NODES, readDocument, TAPE_MIME } from '../src/model';
import { renderDocument, tooltipLines } from '../src/render';
import { starterNotebook } from '../src/starter';
import { arraySummaries, chain, hostile, HOSTILE, sinTimesX } from './fixtures';

describe('layout', () => {
  it('places every node once and routes every edge left to right', () => {
    const doc = readDocument(sinTimesX(), TAPE_MIME);
    const placed = layoutGraph(doc);
    expect(placed.nodes.map(n => n.id).sort()).toEqual([0, 1, 2]);
    expect(placed.edges.map(e => [e.source, e.target])).toEqual([[0, 1], [1, 2], [0, 2]]);
    const x = new Map(placed.nodes.map(n => [n.id, n.x]));
    expect(x.get(0)!).toBeLessThan(x.get(1)!);
    expect(x.get(1)!).toBeLessThan(x.get(2)!);
    for (const e of placed.edges) {
      expect(e.points.length).toBeGreaterThanOrEqual(2);
    }
  });
});

describe('chooseLayout', () => {
  it('keeps a small graph left to right', () => {
    const doc = readDocument(sinTimesX(), TAPE_MIME);
    expect(chooseLayout(doc, 900, 480, 900, 0.35).height).toBe(480);
  });

  it('draws a long chain of array ops as a readable column', () => {
    const doc = readDocument(chain(24));
    for (const n of doc.nodes) {
      n.shape = [64, 128];  // wide boxes: "sin [64×128]"
    }
    const wide = layoutGraph(doc, 'LR');
    expect(fitScale(wide, 900, 480)).toBeLessThan(0.35);  // unreadable as one row
    const chosen = chooseLayout(doc, 900, 480, 900, 0.35);
    expect(chosen.height).toBe(900);
    expect(fitScale(chosen.placed, 900, 900)).toBeGreaterThan(fitScale(wide, 900, 480));
    const y = chosen.placed.nodes.map(n => n.y);
    expect(y[0]).toBeLessThan(y[y.length - 1]);  // inputs on top, the output below
  });
});

describe('renderDocument', () => {
  it('draws one group per node and one path per edge', () => {
    const { root } = renderDocument(readDocument(sinTimesX(), TAPE_MIME));
    expect(root.querySelectorAll('g.wb-node[data-node-id]')).toHaveLength(3);
    expect(root.querySelectorAll('path.wb-edge')).toHaveLength(3);
    const labels = [...root.querySelectorAll('.wb-node-label')].map(t => t.textContent);
    expect(labels).toEqual(['x', 'sin', 'mul']);
  });

  it('hostile labels stay text: no img, no script, no handler attributes', () => {
    const { root } = renderDocument(readDocument(hostile()));
    document.body.appendChild(root);
    expect(root.querySelectorAll('img, script, [onerror]')).toHaveLength(0);
    const labels = [...root.querySelectorAll('.wb-node-label')].map(t => t.textContent);
    expect(labels[0]).toContain('<img');
    expect(root.querySelector('.wb-title')!.textContent).toBe(HOSTILE[1]);
    // the tooltip shows expression and op as text too
    root.querySelector('g.wb-node')!.dispatchEvent(new MouseEvent('mouseenter'));
    expect(root.querySelector('.wb-tooltip')!.textContent).toContain(HOSTILE[1]);
    expect(root.querySelectorAll('img, script')).toHaveLength(0);
    expect((window as any).__wbHacked).toBeUndefined();
    root.remove();
  });

  it('stepping moves the highlight and the shown adjoints', () => {
    const { root } = renderDocument(readDocument(sinTimesX(), TAPE_MIME));
    const active = (): string | null | undefined =>
      root.querySelector('g.wb-node.wb-active')?.getAttribute('data-node-id');
    const adjointOf = (id: number): string | null =>
      root.querySelector(`g.wb-node[data-node-id="${id}"] .wb-node-adjoint`)!.textContent;
    expect(active()).toBe('2');
    expect(root.querySelector('.wb-step-label')!.textContent).toBe('step 1 of 3');
    expect(adjointOf(0)).toBe(`ā ${Number(Math.sin(0.5).toPrecision(4))}`);
    (root.querySelector('.wb-step-next') as HTMLButtonElement).click();
    expect(active()).toBe('1');
    expect(root.querySelector('.wb-step-label')!.textContent).toBe('step 2 of 3');
    const both = Math.sin(0.5) + 0.5 * Math.cos(0.5);
    expect(adjointOf(0)).toBe(`ā ${Number(both.toPrecision(4))}`);
    (root.querySelector('.wb-step-prev') as HTMLButtonElement).click();
    expect(active()).toBe('2');
    expect(root.querySelector('.wb-step-detail')!.textContent).toMatch(/^mul \(ā = 1\) sends 0\.5 to sin/);
    root.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowRight' }));
    expect(active()).toBe('1');
  });

  it('without backward steps shows the final adjoints and no stepper', () => {
    const raw = sinTimesX();
    delete raw.backward;
    const { root } = renderDocument(readDocument(raw, TAPE_MIME));
    expect(root.querySelector('.wb-stepper')).toBeNull();
    expect(root.querySelector('g.wb-node[data-node-id="1"] .wb-node-adjoint')!.textContent).toBe('ā 0.5');
  });

  it('array nodes show their shape', () => {
    const raw = chain(2) as any;
    raw.nodes[1].shape = [2, 3];
    const { root } = renderDocument(readDocument(raw));
    expect(root.querySelector('g.wb-node[data-node-id="1"] .wb-node-label')!.textContent).toBe('sin [2×3]');
    expect(tooltipLines(readDocument(raw).nodes[1], undefined)).toContainEqual(['shape', '2×3']);
    raw.nodes[1].params = { axis: 0 };
    expect(tooltipLines(readDocument(raw).nodes[1], 2)).toEqual([
      ['op', 'sin'], ['params', '{"axis":0}'], ['shape', '2×3'], ['value', '0'], ['adjoint', '2']
    ]);
  });

  it('array graphs: shapes in the labels, summaries in the nodes and tooltips', () => {
    const { root, setStep } = renderDocument(readDocument(arraySummaries()));
    const label = (id: number): string | null =>
      root.querySelector(`g.wb-node[data-node-id="${id}"] .wb-node-label`)!.textContent;
    const adjoint = (id: number): string | null =>
      root.querySelector(`g.wb-node[data-node-id="${id}"] .wb-node-adjoint`)!.textContent;
    expect(label(2)).toBe('x @ W [2×1]');
    expect(label(3)).toBe('sum');
    setStep(1); // the product pushes to x and W: their totals are summaries
    expect(adjoint(1)).toBe('ā mean 2, min 2, max 2');
    expect(adjoint(2)).toBe('ā [1, … 2 values]');
    const doc = readDocument(arraySummaries());
    expect(tooltipLines(doc.nodes[0], doc.nodes[0].adjoint)).toContainEqual(['value', 'mean 1, min 1, max 1']);
  });

  it('past the size limit draws a summary with a note', () => {
    const { root } = renderDocument(readDocument(chain(MAX_DRAWN_NODES + 100)));
    expect(root.querySelectorAll('g.wb-node').length).toBeLessThan(MAX_DRAWN_NODES);
    expect(root.querySelector('.wb-hidden-note')!.textContent).toMatch(/\d+ nodes hidden/);
  });
});

describe('starter notebook', () => {
  it('imports workbench and calls the explorer and the graph, on python3', () => {
    const nb = starterNotebook() as any;
    expect(nb.metadata.kernelspec.name).toBe('python3');
    const code = nb.cells.filter((c: any) => c.cell_type === 'code').map((c: any) => c.source);
    expect(code[0]).toContain('import workbench as wb');
    expect(code.some((s: string) => s.startsWith('wb.explore('))).toBe(true);
    expect(code.some((s: string) => s.startsWith('wb.graph('))).toBe(true);
  });
});
