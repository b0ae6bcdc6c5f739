/**
 * The Node face of the Lifeline client: LifelineClient over the Node
 * transport (net/tls), with client transport options passed through.
 */
import { LifelineClient as Core, type LifelineClientOptions } from '../session/lifeline-client.js';
import type { ClientOptions } from '../transport/node/client.js';
import { validateSocketOptions } from '../transport/node/websocket.js';
import { NodeSocket } from './node-socket.js';

export interface NodeLifelineClientOptions extends Omit<LifelineClientOptions, 'socketFactory'> {
  /** Transport options for the underlying socket (TLS, headers, limits...). */
  transport?: Omit<ClientOptions, 'protocols'>;
  socketFactory?: LifelineClientOptions['socketFactory'];
}

export class LifelineClient extends Core {
  constructor(url: string, options: NodeLifelineClientOptions = {}) {
    // Here, not at each connect: a bad limit would otherwise fail every reconnect.
    if (options.transport !== undefined) validateSocketOptions(options.transport);
    super(url, {
      ...options,
      environment: options.environment ?? null,
      socketFactory: options.socketFactory ?? ((u, protocols) => new NodeSocket(u, protocols, options.transport)),
    });
  }
}
