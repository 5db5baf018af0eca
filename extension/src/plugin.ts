/**
 * The front-end plugin: a palette command and a launcher card that create a new notebook holding
 * a workbench starter (imports, one explorer, one graph), on the python3 kernel.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';

import { starterNotebook } from './starter';

export const COMMAND = 'workbench:new-notebook';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'workbench-jupyterlab:launcher',
  description: 'A launcher card and a command for a new workbench notebook.',
  autoStart: true,
  optional: [ICommandPalette, ILauncher],
  activate: (app: JupyterFrontEnd, palette: ICommandPalette | null, launcher: ILauncher | null) => {
    app.commands.addCommand(COMMAND, {
      label: args => (args['isPalette'] ? 'New workbench notebook' : 'workbench notebook'),
      caption: 'A new notebook with a workbench starter: an explorer and a graph',
      iconClass: 'wb-launcher-icon',
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
    launcher?.add({ command: COMMAND, category: 'Notebook', rank: 50 });
  }
};

export default plugin;
