/**
 * The browser face of the Lifeline client: LifelineClient over the native
 * WebSocket. Zero dependencies; bundled to dist/browser/lifeline.js.
 */
import { LifelineClient as Core, type LifelineClientOptions } from '../session/lifeline-client.js';

export type BrowserLifelineClientOptions = Omit<LifelineClientOptions, 'socketFactory'> & { socketFactory?: LifelineClientOptions['socketFactory'] };

export class LifelineClient extends Core {
  constructor(url: string, options: BrowserLifelineClientOptions = {}) {
    super(url, {
      ...options,
      socketFactory: options.socketFactory ?? ((u, protocols) => new WebSocket(u, protocols) as unknown as ReturnType<LifelineClientOptions['socketFactory']>),
    });
  }
}
export type { ClientState, ClientCloseCause, ClientCloseInfo, ClientStats, ClientEvents } from '../session/lifeline-client.js';
export type { Clock } from '../session/clock.js';
