/**
 * The Node WebSocket server: answers HTTP upgrade requests on an existing
 * http/https server (or a standalone one it creates), runs the opening
 * handshake through protocol/handshake.ts, and hands each accepted socket to
 * the application as a WebSocket. Several servers may share one HTTP server,
 * each on its own path.
 */
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { HandshakeError, UsageError } from '../../protocol/errors.js';
import {
  buildAcceptResponse,
  buildRejectResponse,
  validateUpgradeRequest,
  type ServerExtensionNegotiator,
  type ServerHandshakeOptions,
  type UpgradeRequestInfo,
} from '../../protocol/handshake.js';
import { EXTENSION_NAME, PerMessageDeflate, serverAccept, validateDeflateOptions, type DeflateOptions, type DeflateParams } from '../../protocol/deflate.js';
import { WebSocket, flushBatched, validateSocketOptions, type SocketOptions } from './websocket.js';
import { PreparedMessage } from '../../protocol/connection.js';

/** What the upgrade hook decides: accept (optionally attaching context), or reject with an HTTP status. */
export type UpgradeDecision =
  | void
  | true
  | { accept: true; context?: unknown }
  | { status: number; message?: string; headers?: Record<string, string> };

export interface ServerOptions extends SocketOptions {
  /** Attach to this HTTP(S) server. Without it (and with `port`) a standalone server is created. */
  server?: HttpServer | HttpsServer;
  /** Port for a standalone server (0 = any free port). */
  port?: number;
  /** Host for a standalone server. Default: Node's default (all interfaces); the CLI defaults to 127.0.0.1. */
  host?: string;
  /** Only upgrade requests for this path (query ignored) are handled. Default: all paths. */
  path?: string;
  /** Don't listen anywhere: call handleUpgrade() yourself. */
  noServer?: boolean;
  /** Subprotocols in preference order, or a chooser. */
  subprotocols?: ServerHandshakeOptions['subprotocols'];
  /** Allowed origins (exact serialized origins) or a predicate. Default: any. */
  origin?: ServerHandshakeOptions['origin'];
  /** Refuse requests with no Origin header (403). */
  requireOrigin?: boolean;
  /** permessage-deflate (RFC 7692): false (default), true, or options. */
  deflate?: boolean | DeflateOptions;
  /**
   * Async hook run after the request passed the RFC checks and before the 101
   * is written: authenticate, rate-limit, or reject with an HTTP status.
   * Throwing answers 500.
   */
  verifyUpgrade?: (req: IncomingMessage) => UpgradeDecision | Promise<UpgradeDecision>;
  /** Time allowed for verifyUpgrade, ms (answer 503 beyond it). Default 10000. */
  upgradeTimeout?: number;
  /** Open connections (plus handshakes under way) beyond which upgrades get 503 + Retry-After. Default 100000. */
  maxConnections?: number;
  /**
   * Upgrades per source address: a token bucket refilled at `perSecond` with
   * room for `burst`; beyond it, 429 + Retry-After. Off by default: behind a
   * reverse proxy every client shares the proxy's address (and a mass
   * reconnect after a restart is legitimate). Suggested: { perSecond: 20, burst: 50 }.
   */
  upgradeRate?: { perSecond: number; burst: number } | false;
  /**
   * Standalone server only (an attached server is yours to configure): time to
   * receive the whole upgrade request, ms (slowloris; Node answers 408). Default 10000.
   */
  handshakeTimeout?: number;
  /** Standalone server only: largest request head, bytes (Node answers 431). Default 16384. */
  maxHandshakeBytes?: number;
}

/** Per-address token buckets for upgradeRate, bounded in size. */
class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly maxKeys = 100_000,
  ) {}

  /** 0 when allowed, else the ms until a token is available. */
  take(key: string, now: number): number {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
      b.at = now;
      // Keep recently used keys at the end so the oldest are evicted first.
      this.buckets.delete(key);
      this.buckets.set(key, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / this.perSecond) * 1000);
  }
}

export interface ServerEvents {
  connection: [socket: WebSocket, req: IncomingMessage];
  listening: [];
  error: [err: Error];
  close: [];
  /** An upgrade was refused (status, reason) — for logs and metrics. */
  'upgrade-rejected': [status: number, error: Error, req: IncomingMessage];
}

/** One 'upgrade' listener per HTTP server, dispatching by path to the WebSocket servers on it. */
const routers = new WeakMap<HttpServer | HttpsServer, Set<WebSocketServer>>();

function route(http: HttpServer | HttpsServer, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const servers = routers.get(http);
  if (servers) {
    for (const s of servers) {
      if (s.shouldHandle(req)) {
        s.handleUpgrade(req, socket, head);
        return;
      }
    }
  }
  socket.on('error', () => {});
  socket.end(buildRejectResponse(404, 'No WebSocket endpoint at this path'));
}

export class WebSocketServer extends EventEmitter<ServerEvents> {
  /** Open connections (for broadcast and shutdown). */
  readonly clients = new Set<WebSocket>();
  readonly options: ServerOptions;
  private readonly http: HttpServer | HttpsServer | null;
  private readonly ownsHttp: boolean;
  private readonly handshake: ServerHandshakeOptions;
  private readonly deflate: DeflateOptions | null;
  private closed = false;
  private handshaking = 0;
  private readonly maxConnections: number;
  private readonly rate: RateLimiter | null;

  constructor(options: ServerOptions = {}, onListening?: () => void) {
    super();
    this.options = options;
    validateSocketOptions(options);
    this.maxConnections = options.maxConnections ?? 100_000;
    if (!Number.isSafeInteger(this.maxConnections) || this.maxConnections < 1) {
      throw new UsageError('WS_ERR_INVALID_OPTION', `maxConnections must be a positive integer, got ${String(options.maxConnections)}`);
    }
    const rate = options.upgradeRate ?? false;
    if (rate && !(rate.perSecond > 0 && rate.burst >= 1)) {
      throw new UsageError('WS_ERR_INVALID_OPTION', 'upgradeRate needs perSecond > 0 and burst >= 1');
    }
    this.rate = rate ? new RateLimiter(rate.perSecond, rate.burst) : null;
    if (options.path !== undefined && !options.path.startsWith('/')) {
      throw new UsageError('WS_ERR_INVALID_OPTION', `path must start with '/', got ${JSON.stringify(options.path)}`);
    }
    const modes = [options.server !== undefined, options.port !== undefined, options.noServer === true].filter(Boolean).length;
    if (modes !== 1) {
      throw new UsageError('WS_ERR_INVALID_OPTION', 'Give exactly one of: server, port, noServer');
    }
    this.deflate = options.deflate ? validateDeflateOptions(options.deflate === true ? {} : options.deflate) : null;
    const extensions: ServerExtensionNegotiator[] = [];
    if (this.deflate) {
      const d = this.deflate;
      extensions.push({
        name: EXTENSION_NAME,
        accept: (offers) => {
          const r = serverAccept(offers, d);
          return r ? { response: r.response, state: r.params } : null;
        },
      });
    }
    this.handshake = {
      subprotocols: options.subprotocols,
      origin: options.origin,
      requireOrigin: options.requireOrigin,
      extensions,
    };

    if (options.noServer) {
      this.http = null;
      this.ownsHttp = false;
    } else {
      this.ownsHttp = options.server === undefined;
      const http =
        options.server ??
        createServer(
          {
            maxHeaderSize: options.maxHandshakeBytes ?? 16384,
            headersTimeout: options.handshakeTimeout ?? 10_000,
            requestTimeout: options.handshakeTimeout ?? 10_000,
            // Node enforces those timeouts only every connectionsCheckingInterval (30 s by default).
            connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor((options.handshakeTimeout ?? 10_000) / 4))),
          },
          (_req, res) => {
          // RFC 6455 4.2.2 / RFC 7231 6.5.15: plain HTTP on a WebSocket endpoint.
          const body = 'This is a WebSocket endpoint; send an upgrade request.\n';
          res.writeHead(426, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body), Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13' });
          res.end(body);
        });
      this.http = http;
      let set = routers.get(http);
      if (!set) {
        set = new Set();
        routers.set(http, set);
        http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => route(http, req, socket, head));
      }
      set.add(this);
      if (this.ownsHttp) {
        http.on('error', (err) => this.emit('error', err));
        http.on('listening', () => this.emit('listening'));
        if (onListening) this.once('listening', onListening);
        http.listen(options.port, options.host);
      }
    }
  }

  /** The bound address of a standalone or attached server. */
  address(): AddressInfo | string | null {
    return this.http ? this.http.address() : null;
  }

  /** Whether this server handles requests for `req.url`. */
  shouldHandle(req: IncomingMessage): boolean {
    if (this.closed) return false;
    if (this.options.path === undefined) return true;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    return (q === -1 ? url : url.slice(0, q)) === this.options.path;
  }

  /**
   * Runs the handshake for an upgrade request. On success the socket is
   * emitted as 'connection' (and passed to `cb` when given).
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb?: (ws: WebSocket, req: IncomingMessage) => void): void {
    socket.on('error', onEarlyError);
    if (this.clients.size + this.handshaking >= this.maxConnections) {
      this.reject(req, socket, 503, new HandshakeError('WS_ERR_TOO_MANY_CONNECTIONS', 503, `Server is at maxConnections (${this.maxConnections})`), { 'Retry-After': '5' });
      return;
    }
    if (this.rate) {
      const wait = this.rate.take(req.socket.remoteAddress ?? '', Date.now());
      if (wait > 0) {
        this.reject(req, socket, 429, new HandshakeError('WS_ERR_UPGRADE_RATE', 429, 'Too many upgrade requests from this address'), { 'Retry-After': String(Math.ceil(wait / 1000)) });
        return;
      }
    }
    this.handshaking++;
    let counted = true;
    const done = () => {
      if (counted) {
        counted = false;
        this.handshaking--;
        // Not kept for the connection's life (memory per idle connection).
        socket.removeListener('close', done);
      }
    };
    socket.once('close', done);
    this.runHandshake(req, socket, head, done, cb);
  }

  private runHandshake(req: IncomingMessage, socket: Duplex, head: Buffer, done: () => void, cb?: (ws: WebSocket, req: IncomingMessage) => void): void {
    const info: UpgradeRequestInfo = { method: req.method ?? '', httpVersion: req.httpVersion, url: req.url ?? '/', headers: req.headers };
    let result;
    try {
      result = validateUpgradeRequest(info, this.handshake);
    } catch (err) {
      this.reject(req, socket, 500, err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (!result.ok) {
      this.reject(req, socket, result.status, result.error, result.headers);
      return;
    }
    const ok = result;
    const proceed = (decision: UpgradeDecision) => {
      if (socket.destroyed) return;
      let context: unknown;
      if (decision && typeof decision === 'object') {
        if ('status' in decision) {
          this.reject(req, socket, decision.status, new HandshakeError('WS_ERR_UPGRADE_REJECTED', decision.status, decision.message ?? 'Upgrade rejected'), decision.headers ?? {}, decision.message);
          return;
        }
        context = decision.context;
      }
      done();
      this.complete(req, socket as Socket, head, ok.key, ok.protocol, ok.extensions, ok.responseHeaders, context, cb);
    };
    const hook = this.options.verifyUpgrade;
    if (!hook) {
      proceed(undefined);
      return;
    }
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      this.reject(req, socket, 503, new HandshakeError('WS_ERR_UPGRADE_TIMEOUT', 503, 'verifyUpgrade took too long'));
    }, this.options.upgradeTimeout ?? 10000);
    timer.unref();
    Promise.resolve()
      .then(() => hook(req))
      .then(
        (d) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          proceed(d);
        },
        (err: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          this.reject(req, socket, 500, err instanceof Error ? err : new Error(String(err)));
        },
      );
  }

  private complete(
    req: IncomingMessage,
    socket: Socket,
    head: Buffer,
    key: string,
    protocol: string | undefined,
    extensions: Map<string, unknown>,
    responseHeaders: string[],
    context: unknown,
    cb?: (ws: WebSocket, req: IncomingMessage) => void,
  ): void {
    if (this.closed) {
      this.reject(req, socket, 503, new HandshakeError('WS_ERR_SERVER_CLOSING', 503, 'Server is shutting down'));
      return;
    }
    const params = extensions.get(EXTENSION_NAME) as DeflateParams | undefined;
    const codec = params && this.deflate
      ? new PerMessageDeflate('server', params, {
          threshold: this.deflate.threshold,
          maxPayload: this.options.maxMessageSize ?? 64 * 1024 * 1024,
          concurrencyLimit: this.deflate.concurrencyLimit,
          level: this.deflate.level,
          memLevel: this.deflate.memLevel,
        })
      : null;
    socket.write(buildAcceptResponse(key, responseHeaders));
    socket.removeListener('error', onEarlyError);
    const ws = new WebSocket();
    if (context !== undefined) ws.context = context;
    const extHeader = responseHeaders.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
    ws._attach({
      role: 'server',
      socket,
      // Bytes that came with the upgrade are fed after 'connection' listeners exist.
      head: EMPTY,
      protocol: protocol ?? '',
      extensions: extHeader ? extHeader.slice(extHeader.indexOf(':') + 1).trim() : '',
      codec,
      options: this.options,
    });
    this.clients.add(ws);
    ws._closeHook = this;
    if (cb) cb(ws, req);
    this.emit('connection', ws, req);
    ws._receive(head);
  }

  private reject(req: IncomingMessage, socket: Duplex, status: number, err: Error, headers: Record<string, string> = {}, message?: string): void {
    if (this.listenerCount('upgrade-rejected') > 0) this.emit('upgrade-rejected', status, err, req);
    if (socket.destroyed) return;
    socket.end(buildRejectResponse(status, message ?? err.message, headers));
  }

  /** @internal A client's socket closed. */
  _socketClosed(ws: WebSocket): void {
    this.clients.delete(ws);
  }

  /**
   * Sends one message to every open client (or those `filter` accepts). The
   * frame is encoded once and the same bytes are queued to each socket; clients
   * with permessage-deflate or fragmentation get it through their own send().
   * Each socket applies its slow-consumer policy as for send(). Returns how
   * many clients it was queued to. Per-client backpressure is not answered
   * (no false, so no 'drain' owed for a broadcast): read a client's
   * bufferedAmount, or the answer of its own send().
   */
  broadcast(data: string | Buffer | Uint8Array | PreparedMessage, options?: { binary?: boolean; filter?: (ws: WebSocket) => boolean }): number {
    const message = data instanceof PreparedMessage ? data : new PreparedMessage(data, options?.binary ?? typeof data !== 'string');
    const filter = options?.filter;
    let n = 0;
    // Written socket by socket at the end, not one process.nextTick per client.
    flushBatched(() => {
      for (const ws of this.clients) {
        if (ws.readyState !== WebSocket.OPEN || (filter !== undefined && !filter(ws))) continue;
        ws._broadcastPrepared(message);
        n++;
      }
    });
    return n;
  }

  /**
   * Stops accepting and closes every client with 1001 (going away). Resolves
   * when all clients are closed (or after `timeout` ms, terminating the rest).
   */
  async close(options: { timeout?: number; code?: number; reason?: string } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.http) routers.get(this.http)?.delete(this);
    const pending = [...this.clients].map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          try {
            ws.close(options.code ?? 1001, options.reason ?? 'server shutting down');
          } catch {
            ws.terminate();
          }
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(pending),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          for (const ws of this.clients) ws.terminate();
          resolve();
        }, options.timeout ?? 5000);
      }),
    ]);
    clearTimeout(timer);
    if (this.ownsHttp && this.http) {
      await new Promise<void>((resolve) => {
        this.http!.close(() => resolve());
        (this.http as HttpServer).closeAllConnections?.();
      });
    }
    this.emit('close');
  }
}

const EMPTY = Buffer.alloc(0);

function onEarlyError(): void {
  // A socket that fails during the handshake is simply dropped.
}
