/**
 * The notebook that the "workbench notebook" launcher card and palette command create.
 */

export const STARTER_SOURCES: ReadonlyArray<{ type: 'markdown' | 'code'; source: string }> = [
  {
    type: 'markdown',
    source:
      '# A workbench notebook\n\n' +
      'Run the cells (Shift+Enter). Move the slider in the explorer; hover the nodes of the graph.'
  },
  { type: 'code', source: 'import numpy as np\nimport workbench as wb' },
  { type: 'code', source: 'wb.explore("x**2*sin(x)")' },
  { type: 'code', source: 'wb.graph(lambda x: np.sin(x) * x, 0.5)' }
];

/** An nbformat 4 notebook, kernel python3, holding the starter cells. */
export function starterNotebook(): Record<string, unknown> {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' },
      language_info: { name: 'python' }
    },
    cells: STARTER_SOURCES.map((cell, i) => ({
      id: `workbench-starter-${i}`,
      cell_type: cell.type,
      metadata: {},
      source: cell.source,
      ...(cell.type === 'code' ? { outputs: [], execution_count: null } : {})
    }))
  };
}
