/**
 * The front-end plugin: a palette command and a launcher card that create a new notebook holding
 * a workbench starter (imports, one explorer, one graph), on the python3 kernel.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { LabIcon } from '@jupyterlab/ui-components';

import { starterNotebook } from './starter';

export const COMMAND = 'workbench:new-notebook';

/** Three nodes and two edges: a computational graph. */
const GRAPH_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48"><g fill="none" stroke="#1976d2" stroke-width="3">' +
  '<circle cx="10" cy="24" r="6"/><circle cx="38" cy="12" r="6"/><circle cx="38" cy="36" r="6"/>' +
  '<path d="M16 22 32 14M16 26 32 34"/></g></svg>';
const graphIcon = new LabIcon({ name: 'workbench-jupyterlab:graph', svgstr: GRAPH_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'workbench-jupyterlab:launcher',
  description: 'A launcher card and a command for a new workbench notebook.',
  autoStart: true,
  optional: [ICommandPalette, ILauncher],
  activate: (app: JupyterFrontEnd, palette: ICommandPalette | null, launcher: ILauncher | null) => {
    app.commands.addCommand(COMMAND, {
      label: args => (args['isPalette'] ? 'New workbench notebook' : 'workbench notebook'),
      caption: 'A new notebook with a workbench starter: an explorer and a graph',
      icon: graphIcon,
      execute: async args => {
        const cwd = typeof args['cwd'] === 'string' ? args['cwd'] : '';
        const contents = app.serviceManager.contents;
        const created = await contents.newUntitled({ path: cwd, type: 'notebook' });
        await contents.save(created.path, { type: 'notebook', format: 'json', content: starterNotebook() });
        return app.commands.execute('docmanager:open', {
          path: created.path,
          factory: 'Notebook',
          kernel: { name: 'python3' }
        });
      }
    });
    palette?.addItem({ command: COMMAND, category: 'workbench', args: { isPalette: true } });
    // Cards of the Notebook category show a kernel icon from a URL (else the label's first letter).
    launcher?.add({
      command: COMMAND,
      category: 'Notebook',
      rank: 50,
      kernelIconUrl: `data:image/svg+xml,${encodeURIComponent(GRAPH_SVG)}`
    });
  }
};

export default plugin;
