/**
 * The MIME renderer extension: draws workbench graph and tape documents in notebook outputs.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { DocumentError, GRAPH_MIME, readDocument, TAPE_MIME } from './model';
import { renderDocument } from './render';

export class GraphView extends Widget implements IRenderMime.IRenderer {
  constructor(private readonly options: IRenderMime.IRendererOptions) {
    super();
    this.addClass('wb-graph-output');
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const mimeType = this.options.mimeType;
    this.node.replaceChildren();
    try {
      const doc = readDocument(model.data[mimeType], mimeType);
      this.node.appendChild(renderDocument(doc).root);
    } catch (error) {
      // A document we cannot read is reported as text; anything else is a bug worth seeing.
      const message = error instanceof DocumentError ? error.message : String(error);
      const pre = document.createElement('pre');
      pre.className = 'wb-error';
      pre.textContent = `workbench: cannot draw this ${mimeType} document: ${message}`;
      this.node.appendChild(pre);
    }
    return Promise.resolve();
  }
}

export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [GRAPH_MIME, TAPE_MIME],
  createRenderer: options => new GraphView(options)
};

const extension: IRenderMime.IExtension = {
  id: 'workbench-jupyterlab:mime',
  description: 'Draws workbench computational graphs and tapes.',
  rendererFactory,
  rank: 0,
  dataType: 'json'
};

export default extension;
