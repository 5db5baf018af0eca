/** Hand-built documents for the tests; every expected number is worked out from calculus. */

export const X = 0.5;

/** f(x) = sin(x) * x at x = 0.5 as a tape document with its backward steps (worked by hand). */
export function sinTimesX(): Record<string, unknown> {
  const sin = Math.sin(X);
  const dSin = X * Math.cos(X); // d out/d sin = x, times d sin/d x = cos(x)
  return {
    schema: 'workbench.tape',
    version: 1,
    nodes: [
      { id: 0, op: 'input', label: 'x', shape: [], dtype: 'float64', params: {}, value: X, adjoint: sin + dSin, truncated: false },
      { id: 1, op: 'sin', label: '', shape: [], dtype: 'float64', params: {}, value: sin, adjoint: X, truncated: false },
      { id: 2, op: 'mul', label: '', shape: [], dtype: 'float64', params: {}, value: sin * X, adjoint: 1, truncated: false }
    ],
    edges: [
      { source: 0, target: 1, argnum: 0 },
      { source: 1, target: 2, argnum: 0 },
      { source: 0, target: 2, argnum: 1 }
    ],
    inputs: [0],
    output: 2,
    backward: [
      {
        node: 2,
        adjoint: 1,
        contributions: [
          { to: 1, argnum: 0, value: X, total: X },
          { to: 0, argnum: 1, value: sin, total: sin }
        ]
      },
      { node: 1, adjoint: X, contributions: [{ to: 0, argnum: 0, value: dSin, total: sin + dSin }] },
      { node: 0, adjoint: sin + dSin, contributions: [] }
    ]
  };
}

/** A chain x -> sin -> sin -> ... of n nodes, as a graph document. */
export function chain(n: number): Record<string, unknown> {
  const nodes = Array.from({ length: n }, (_, i) => ({
    id: i,
    op: i === 0 ? 'input' : 'sin',
    label: i === 0 ? 'x' : 'sin',
    expression: '',
    shape: [],
    value: 0,
    adjoint: null
  }));
  const edges = Array.from({ length: n - 1 }, (_, i) => ({ source: i, target: i + 1, argnum: 0 }));
  return { schema: 'workbench.graph', version: 1, title: 'chain', nodes, edges, inputs: [0], outputs: [n - 1], truncated: false };
}

export const HOSTILE = ['<img src=x onerror="window.__wbHacked=1">', '<script>window.__wbHacked=1</script>'];

/** A graph whose title, labels and expressions are HTML an attacker would like to see run. */
export function hostile(): Record<string, unknown> {
  return {
    schema: 'workbench.graph',
    version: 1,
    title: HOSTILE[1],
    nodes: [
      { id: 0, op: 'input', label: HOSTILE[0], expression: HOSTILE[1], shape: [], value: 1, adjoint: 1 },
      { id: 1, op: HOSTILE[1], label: HOSTILE[1], expression: HOSTILE[0], shape: [], value: 1, adjoint: 1 }
    ],
    edges: [{ source: 0, target: 1, argnum: 0 }],
    inputs: [0],
    outputs: [1],
    truncated: false
  };
}

/**
 * An array-level graph document as workbench writes it for y = sum(x @ W) with x 2×60 and
 * W 60×1 of ones: x and the product are too big to include (120 and 2 elements here stand in
 * for big arrays: only the fields matter), so they come as null plus a text summary.
 */
export function arraySummaries(): Record<string, unknown> {
  return {
    schema: 'workbench.graph',
    version: 1,
    title: 'f(x, W) = sum(x @ W)',
    level: 'arrays',
    nodes: [
      { id: 0, op: 'input', label: 'x', expression: 'x', shape: [2, 60], value: null, adjoint: null,
        value_summary: 'mean 1, min 1, max 1', adjoint_summary: 'mean 1, min 1, max 1' },
      { id: 1, op: 'input', label: 'W', expression: 'W', shape: [60, 1], value: null, adjoint: null,
        value_summary: 'mean 1, min 1, max 1', adjoint_summary: 'mean 2, min 2, max 2' },
      { id: 2, op: 'einsum', label: 'x @ W', expression: 'x @ W', shape: [2, 1], value: [[60], [60]], adjoint: [[1], [1]] },
      { id: 3, op: 'sum', label: 'sum', expression: 'sum(x @ W)', shape: [], value: 120, adjoint: 1 }
    ],
    edges: [
      { source: 0, target: 2, argnum: 0 },
      { source: 1, target: 2, argnum: 1 },
      { source: 2, target: 3, argnum: 0 }
    ],
    inputs: [0, 1],
    outputs: [3],
    truncated: false,
    backward: [
      { node: 3, adjoint: 1, contributions: [{ to: 2, argnum: 0, value: [[1], [1]], total: [[1], [1]] }] },
      {
        node: 2,
        adjoint: [[1], [1]],
        contributions: [
          { to: 0, argnum: 0, value: null, total: null, value_summary: 'mean 1, min 1, max 1', total_summary: 'mean 1, min 1, max 1' },
          { to: 1, argnum: 1, value: null, total: null, value_summary: 'mean 2, min 2, max 2', total_summary: 'mean 2, min 2, max 2' }
        ]
      },
      { node: 1, adjoint: null, adjoint_summary: 'mean 2, min 2, max 2', contributions: [] },
      { node: 0, adjoint: null, adjoint_summary: 'mean 1, min 1, max 1', contributions: [] }
    ]
  };
}
