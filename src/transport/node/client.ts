/**
 * The Node WebSocket client: dials ws:// or wss:// over net/tls (no proxies),
 * runs the client side of the opening handshake (RFC 6455 4.1) through
 * protocol/handshake.ts, then hands the socket to the shared WebSocket pump.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions as TlsOptions } from 'node:tls';
import { HandshakeError, UsageError, type LifelineError } from '../../protocol/errors.js';
import {
  HttpHeadParser,
  buildClientRequest,
  generateClientKey,
  validateServerResponse,
  type ClientExtensionNegotiator,
  type ServerResponseInfo,
} from '../../protocol/handshake.js';
import { EXTENSION_NAME, PerMessageDeflate, clientAccept, clientOffer, validateDeflateOptions, type DeflateOptions, type DeflateParams } from '../../protocol/deflate.js';
import { ReadyState, WebSocket, connectionLost, validateSocketOptions, type SocketOptions } from './websocket.js';

export interface ClientOptions extends SocketOptions {
  /** Subprotocols to offer, in preference order. */
  protocols?: string[];
  /** Extra request headers (not the handshake's own). */
  headers?: Record<string, string>;
  /** Origin header to send (browsers always send one; Node clients usually don't). */
  origin?: string;
  /** permessage-deflate: false (default), true, or options. */
  deflate?: boolean | DeflateOptions;
  /** Time allowed for TCP connect + TLS + handshake, ms. Default 30000. */
  handshakeTimeout?: number;
  /** Largest response head accepted, bytes. Default 16384. */
  maxHeaderBytes?: number;
  /** TLS options for wss:// (ca, rejectUnauthorized, servername...). */
  tls?: TlsOptions;
}

/**
 * A client connection. `new WebSocket(url, options)` starts connecting at
 * once; 'open' fires after the handshake, 'close' (1006) if it fails.
 */
export class ClientWebSocket extends WebSocket {
  private handshakeTimer: NodeJS.Timeout | null = null;
  private connecting: Socket | null = null;
  /** Why the last handshake failed, if it did. */
  handshakeError: LifelineError | null = null;

  constructor(url: string | URL, options: ClientOptions = {}) {
    super();
    const u = typeof url === 'string' ? new URL(url) : url;
    let secure: boolean;
    if (u.protocol === 'ws:' || u.protocol === 'http:') secure = false;
    else if (u.protocol === 'wss:' || u.protocol === 'https:') secure = true;
    else throw new UsageError('WS_ERR_INVALID_URL', `URL scheme must be ws: or wss:, got ${u.protocol}`);
    // RFC 6455 3: "Fragment identifiers are meaningless in the context of WebSocket URIs".
    if (u.hash) throw new UsageError('WS_ERR_INVALID_URL', 'A WebSocket URL must not have a fragment');
    validateSocketOptions(options);
    this.url = u.href;
    const port = u.port ? Number(u.port) : secure ? 443 : 80;
    const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    const hostHeader = u.port ? `${u.hostname}:${u.port}` : u.hostname;
    const key = generateClientKey();
    const protocols = options.protocols ?? [];
    const deflate = options.deflate ? validateDeflateOptions(options.deflate === true ? {} : options.deflate) : null;
    // Validates protocols and headers before any I/O, so misuse throws here.
    const request = buildClientRequest({
      host: hostHeader,
      path: (u.pathname || '/') + u.search,
      key,
      protocols,
      extensions: deflate ? clientOffer(deflate) : undefined,
      origin: options.origin,
      headers: options.headers,
    });
    const negotiators: ClientExtensionNegotiator[] = deflate
      ? [{ name: EXTENSION_NAME, accept: (response) => clientAccept(response, deflate) }]
      : [];

    const socket = secure
      ? tlsConnect({ host: hostname, port, servername: isIP(hostname) ? undefined : hostname, ALPNProtocols: ['http/1.1'], ...options.tls })
      : netConnect({ host: hostname, port });
    this.connecting = socket;
    const parser = new HttpHeadParser('response', options.maxHeaderBytes ?? 16384);

    this.handshakeTimer = setTimeout(() => {
      this.failHandshake(new HandshakeError('WS_ERR_HANDSHAKE_TIMEOUT', 0, `Opening handshake timed out after ${options.handshakeTimeout ?? 30000} ms`));
    }, options.handshakeTimeout ?? 30000);
    this.handshakeTimer.unref();

    const onError = (err: Error) => {
      // The socket's or TLS's own error stays readable as `cause` (its code: ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT...).
      this.failHandshake(connectionLost(`Connection failed: ${err.message}`, err));
    };
    const onClose = () => {
      this.failHandshake(connectionLost('Connection closed during the opening handshake'));
    };
    const onData = (chunk: Buffer) => {
      let parsed;
      try {
        parsed = parser.push(chunk);
      } catch (err) {
        this.failHandshake(err as LifelineError);
        return;
      }
      if (!parsed) return;
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      let negotiated;
      try {
        negotiated = validateServerResponse(parsed.head as ServerResponseInfo, key, protocols, negotiators);
      } catch (err) {
        socket.on('error', () => {});
        this.failHandshake(err as LifelineError);
        return;
      }
      this.clearHandshakeTimer();
      this.connecting = null;
      const params = negotiated.extensions.get(EXTENSION_NAME) as DeflateParams | undefined;
      const codec = params && deflate
        ? new PerMessageDeflate('client', params, {
            threshold: deflate.threshold,
            maxPayload: options.maxMessageSize ?? 64 * 1024 * 1024,
            concurrencyLimit: deflate.concurrencyLimit,
            level: deflate.level,
            memLevel: deflate.memLevel,
          })
        : null;
      const head = parsed.head as ServerResponseInfo;
      const ext = head.headers['sec-websocket-extensions'];
      this._attach({
        role: 'client',
        socket,
        head: parsed.rest,
        protocol: negotiated.protocol ?? '',
        extensions: Array.isArray(ext) ? ext.join(', ') : (ext ?? ''),
        codec,
        options,
      });
    };
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('data', onData);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      socket.write(request);
    });
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer) {
      clearTimeout(this.handshakeTimer);
      this.handshakeTimer = null;
    }
  }

  private failHandshake(err: LifelineError): void {
    if (this._readyState !== ReadyState.CONNECTING) return;
    this.clearHandshakeTimer();
    this.handshakeError = err;
    this._readyState = ReadyState.CLOSED;
    const s = this.connecting;
    this.connecting = null;
    if (s) {
      s.on('error', () => {});
      s.destroy();
    }
    if (this.listenerCount('error') > 0) this.emit('error', err);
    this.emit('close', 1006, '');
  }

  protected override abortConnecting(): void {
    this.failHandshake(connectionLost('Closed by the application before the handshake completed'));
  }
}

/** Opens a client connection; resolves on 'open', rejects with the handshake error. */
export function connect(url: string | URL, options: ClientOptions = {}): Promise<ClientWebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new ClientWebSocket(url, options);
    const onClose = () => reject(ws.handshakeError ?? connectionLost('Connection closed before open'));
    ws.once('open', () => {
      ws.removeListener('close', onClose);
      resolve(ws);
    });
    ws.once('close', onClose);
  });
}
