/**
 * The RFC 6455 section 4 opening handshake, both sides, sans-I/O.
 *
 * Responsibility: turn HTTP heads into decisions and decisions into bytes.
 *  - Server: validate an upgrade request (4.2.1), choose a subprotocol, run the
 *    extension negotiators, and build the 101 answer or an HTTP error answer (4.2.2).
 *  - Client: build the upgrade request (4.1) and validate the server's answer (4.1).
 *  - Both: an incremental HTTP/1.1 head parser that stops at the blank line and
 *    hands back the bytes after it (they already belong to the WebSocket stream).
 *
 * No sockets and no timers here; the handshake timeout lives in the transport.
 * node:crypto is used for SHA-1; the client's random key comes from random-pool.ts.
 *
 * Header maps use lower-case names, like node's IncomingMessage.headers. A value
 * may be an array when a header was repeated (HttpHeadParser always does this;
 * node joins most repeats with ', '); every check here copes with both forms.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { HandshakeError, UsageError } from './errors.js';
import { formatExtensionHeader, isToken, parseExtensionHeader, type ExtensionOffer } from './extensions.js';
import { randomPool } from './random-pool.js';

// RFC 6455 1.3: the GUID concatenated to the key before hashing.
export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The only protocol version we speak (RFC 6455 4.1 step 9 / 4.2.1 item 6). */
export const WS_VERSION = '13';

/** Default limit for the bytes of an HTTP head, start line to blank line inclusive. */
export const DEFAULT_MAX_HEADER_BYTES = 16384;

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

/** RFC 6455 4.2.2 step 5.4: base64(SHA-1(key + GUID)), key taken as sent (not decoded). */
export function computeAcceptKey(key: string): string {
  return createHash('sha1').update(key + WS_GUID, 'latin1').digest('base64');
}

/** RFC 6455 4.1: "a randomly selected 16-byte value that has been base64-encoded". */
export function generateClientKey(): string {
  return randomPool.take(16, 'base64');
}

// 16 bytes encode to 22 significant base64 characters plus '==' padding.
const CLIENT_KEY = /^[A-Za-z0-9+/]{22}==$/;

/** RFC 6455 4.2.1 item 5: the key, base64-decoded, MUST be 16 bytes long. */
export function isValidClientKey(key: string): boolean {
  return CLIENT_KEY.test(key);
}

// ---------------------------------------------------------------------------
// Header helpers
// ---------------------------------------------------------------------------

export type HeaderValue = string | string[] | undefined;
/** Lower-case header names (like node's IncomingMessage.headers). */
export type Headers = Record<string, HeaderValue>;

export interface UpgradeRequestInfo {
  method: string;
  /** 'major.minor', e.g. '1.1' (as node reports it). */
  httpVersion: string;
  url: string;
  headers: Headers;
}

export interface ServerResponseInfo {
  status: number;
  statusText: string;
  httpVersion: string;
  headers: Headers;
}

/** Splits a comma-separated list header (all its lines) into trimmed elements, case preserved, empty elements dropped (RFC 7230 7). */
export function headerList(v: HeaderValue): string[] {
  if (v === undefined) return [];
  const joined = Array.isArray(v) ? v.join(',') : v;
  const out: string[] = [];
  for (const part of joined.split(',')) {
    const t = part.trim();
    if (t !== '') out.push(t);
  }
  return out;
}

/** Like headerList, lower-cased: for case-insensitive tokens such as Connection and Upgrade. */
export function headerTokens(v: HeaderValue): string[] {
  return headerList(v).map((t) => t.toLowerCase());
}

/** Reads a header that must occur at most once. `duplicate` is set when it came as an array of several lines. */
function singleHeader(headers: Headers, name: string): { value: string | undefined; duplicate: boolean } {
  const v = headers[name];
  if (v === undefined) return { value: undefined, duplicate: false };
  if (Array.isArray(v)) {
    if (v.length === 0) return { value: undefined, duplicate: false };
    if (v.length > 1) return { value: undefined, duplicate: true };
    return { value: v[0]!.trim(), duplicate: false };
  }
  return { value: v.trim(), duplicate: false };
}

/** Parses 'major.minor' into a comparable pair; null when it is not one. */
function parseHttpVersion(v: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)$/.exec(v);
  if (!m) return null;
  return [Number(m[1]), Number(m[2])];
}

// Field values may contain HTAB, SP, VCHAR and obs-text, nothing else (RFC 7230 3.2).
const BAD_VALUE_CHAR = /[\x00-\x08\x0a-\x1f\x7f]/;

function assertHeaderLine(name: string, value: string, code: string): void {
  if (!isToken(name)) throw new UsageError(code, `Invalid header name ${JSON.stringify(name)}`);
  if (BAD_VALUE_CHAR.test(value)) throw new UsageError(code, `Invalid characters in value of header ${name}`);
}

// ---------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------

export interface ServerExtensionNegotiator {
  /** Extension token, e.g. 'permessage-deflate'. */
  name: string;
  /**
   * Given all offers with this name (in client order), return the accepted
   * response params, or null to decline. Throw HandshakeError to reject the
   * handshake (its status is answered, normally 400).
   */
  accept(offers: ExtensionOffer[]): { response: ExtensionOffer; state: unknown } | null;
}

export interface ServerHandshakeOptions {
  /**
   * Subprotocols the server supports, in server preference order; or a function
   * choosing one from the client's list (return undefined/false for none). The
   * function is only called when the client offered at least one subprotocol,
   * and must return one of the offered strings.
   */
  subprotocols?: string[] | ((offered: string[], req: UpgradeRequestInfo) => string | undefined | false);
  /** Extension negotiators tried in order, each sees the parsed offers and may accept one. */
  extensions?: ServerExtensionNegotiator[];
  /**
   * Allowed origins: a list of exact serialized origins ('https://a.example'),
   * compared ASCII case-insensitively; or a function, which is called for every
   * request, with `undefined` when the Origin header is missing (unless
   * requireOrigin already refused it). Undefined = allow any. A missing Origin
   * header (non-browser clients) is allowed unless requireOrigin.
   */
  origin?: string[] | ((origin: string | undefined, req: UpgradeRequestInfo) => boolean);
  /** Refuse (403) requests without an Origin header. */
  requireOrigin?: boolean;
}

export type ServerHandshakeResult =
  | {
      ok: true;
      /** The client's Sec-WebSocket-Key, for buildAcceptResponse. */
      key: string;
      protocol: string | undefined;
      /** Extension name -> state returned by its negotiator, in negotiator order. */
      extensions: Map<string, unknown>;
      /** Extra response header lines ('Sec-WebSocket-Protocol: chat'), without CRLF. */
      responseHeaders: string[];
    }
  | {
      ok: false;
      error: HandshakeError;
      status: number;
      /** Headers to send with the error answer: Sec-WebSocket-Version for 426, Allow for 405. */
      headers: Record<string, string>;
    };

function reject(code: string, status: number, message: string, headers: Record<string, string> = {}): ServerHandshakeResult {
  return { ok: false, error: new HandshakeError(code, status, message), status, headers };
}

function rejectWith(error: HandshakeError): ServerHandshakeResult {
  return { ok: false, error, status: error.status, headers: {} };
}

/**
 * Validates an upgrade request (RFC 6455 4.2.1) and negotiates subprotocol and
 * extensions. Never throws on peer input: every refusal comes back as
 * `{ ok: false }` with the status to answer. Throws UsageError when the options
 * or the application's callbacks are wrong; any non-HandshakeError thrown by a
 * callback propagates unchanged.
 */
export function validateUpgradeRequest(req: UpgradeRequestInfo, opts: ServerHandshakeOptions = {}): ServerHandshakeResult {
  const h = req.headers;

  // RFC 6455 4.2.1 item 1: "An HTTP/1.1 or higher GET request".
  if (req.method !== 'GET') {
    return reject('WS_ERR_HANDSHAKE_METHOD', 405, `Method ${req.method} not allowed; the opening handshake is a GET`, { Allow: 'GET' });
  }
  const version = parseHttpVersion(req.httpVersion);
  if (!version || version[0] < 1 || (version[0] === 1 && version[1] < 1)) {
    return reject('WS_ERR_HANDSHAKE_HTTP_VERSION', 400, `HTTP/${req.httpVersion} cannot upgrade; HTTP/1.1 or higher is required`);
  }

  // RFC 6455 4.2.1 item 2: "A |Host| header field containing the server's authority."
  const host = singleHeader(h, 'host');
  if (host.duplicate) return reject('WS_ERR_HANDSHAKE_DUPLICATE_HEADER', 400, 'Duplicate Host header');
  if (!host.value) return reject('WS_ERR_HANDSHAKE_HOST', 400, 'Missing Host header');

  // RFC 6455 4.2.1 item 3: "An |Upgrade| header field containing the value "websocket",
  // treated as an ASCII case-insensitive value."
  if (!headerTokens(h['upgrade']).includes('websocket')) {
    return reject('WS_ERR_HANDSHAKE_UPGRADE', 400, 'Upgrade header must contain "websocket"');
  }
  // RFC 6455 4.2.1 item 4: "A |Connection| header field that includes the token "Upgrade",
  // treated as an ASCII case-insensitive value."
  if (!headerTokens(h['connection']).includes('upgrade')) {
    return reject('WS_ERR_HANDSHAKE_CONNECTION', 400, 'Connection header must contain "Upgrade"');
  }

  // RFC 6455 4.2.1 item 6: "A |Sec-WebSocket-Version| header field, with a value of 13."
  // RFC 6455 4.2.2: otherwise answer "an appropriate HTTP error code (such as 426 Upgrade
  // Required) and a |Sec-WebSocket-Version| header field indicating the version(s) the
  // server is capable of understanding".
  const ver = singleHeader(h, 'sec-websocket-version');
  if (ver.duplicate || (ver.value !== undefined && ver.value.includes(','))) {
    return reject('WS_ERR_HANDSHAKE_DUPLICATE_HEADER', 400, 'Duplicate Sec-WebSocket-Version header', { 'Sec-WebSocket-Version': WS_VERSION });
  }
  if (ver.value !== WS_VERSION) {
    const what = ver.value === undefined ? 'Missing Sec-WebSocket-Version header' : `Unsupported Sec-WebSocket-Version ${JSON.stringify(ver.value)}`;
    return reject('WS_ERR_HANDSHAKE_VERSION', 426, `${what}; this server speaks version ${WS_VERSION}`, { 'Sec-WebSocket-Version': WS_VERSION });
  }

  // RFC 6455 4.2.1 item 5: "A |Sec-WebSocket-Key| header field with a base64-encoded
  // value that, when decoded, is 16 bytes in length."
  const key = singleHeader(h, 'sec-websocket-key');
  if (key.duplicate || (key.value !== undefined && key.value.includes(','))) {
    return reject('WS_ERR_HANDSHAKE_DUPLICATE_HEADER', 400, 'Duplicate Sec-WebSocket-Key header');
  }
  if (key.value === undefined) return reject('WS_ERR_HANDSHAKE_KEY', 400, 'Missing Sec-WebSocket-Key header');
  if (!isValidClientKey(key.value)) return reject('WS_ERR_HANDSHAKE_KEY', 400, 'Sec-WebSocket-Key must be base64 of 16 bytes');

  try {
    // RFC 6455 4.2.2 step 4: "If the server does not wish to accept this connection
    // [because of its origin], it MUST return an appropriate HTTP error code (e.g., 403 Forbidden)".
    const origin = singleHeader(h, 'origin');
    if (origin.duplicate) return reject('WS_ERR_HANDSHAKE_DUPLICATE_HEADER', 400, 'Duplicate Origin header');
    if (origin.value === undefined && opts.requireOrigin) {
      return reject('WS_ERR_ORIGIN_REQUIRED', 403, 'An Origin header is required');
    }
    if (typeof opts.origin === 'function') {
      if (!opts.origin(origin.value, req)) return reject('WS_ERR_ORIGIN_FORBIDDEN', 403, `Origin ${JSON.stringify(origin.value)} is not allowed`);
    } else if (opts.origin !== undefined && origin.value !== undefined) {
      const o = origin.value.toLowerCase();
      if (!opts.origin.some((allowed) => allowed.toLowerCase() === o)) {
        return reject('WS_ERR_ORIGIN_FORBIDDEN', 403, `Origin ${JSON.stringify(origin.value)} is not allowed`);
      }
    }

    const responseHeaders: string[] = [];

    // RFC 6455 4.1: subprotocol elements "MUST be non-empty strings with characters in the
    // range U+0021 to U+007E not including separator characters" and "MUST all be unique".
    const offered = headerList(h['sec-websocket-protocol']);
    for (const p of offered) {
      if (!isToken(p)) return reject('WS_ERR_HANDSHAKE_PROTOCOL', 400, `Invalid subprotocol ${JSON.stringify(p)}`);
    }
    if (new Set(offered).size !== offered.length) {
      return reject('WS_ERR_HANDSHAKE_PROTOCOL', 400, 'Duplicate subprotocol in Sec-WebSocket-Protocol');
    }
    const protocol = chooseSubprotocol(offered, req, opts.subprotocols);
    // RFC 6455 4.2.2 step 5.4: the server "selects one or none of the acceptable protocols
    // and echoes that value in its handshake".
    if (protocol !== undefined) responseHeaders.push(`Sec-WebSocket-Protocol: ${protocol}`);

    const extensions = new Map<string, unknown>();
    const negotiators = opts.extensions ?? [];
    const extHeader = h['sec-websocket-extensions'];
    if (negotiators.length > 0 && extHeader !== undefined) {
      // RFC 6455 9.1: the header "MAY appear multiple times", and is then one list.
      const offers = parseExtensionHeader(Array.isArray(extHeader) ? extHeader.join(',') : extHeader);
      const accepted: ExtensionOffer[] = [];
      for (const neg of negotiators) {
        if (extensions.has(neg.name)) throw new UsageError('WS_ERR_INVALID_OPTION', `Two extension negotiators are named ${neg.name}`);
        const mine = offers.filter((o) => o.name === neg.name);
        if (mine.length === 0) continue;
        const result = neg.accept(mine);
        if (result === null) continue;
        if (result.response.name !== neg.name) {
          throw new UsageError('WS_ERR_INVALID_OPTION', `Negotiator ${neg.name} answered for extension ${result.response.name}`);
        }
        accepted.push(result.response);
        extensions.set(neg.name, result.state);
      }
      // RFC 6455 9.1: the server's response lists the extensions it accepts, in the
      // order in which they are to be applied.
      if (accepted.length > 0) responseHeaders.push(`Sec-WebSocket-Extensions: ${formatExtensionHeader(accepted)}`);
    }

    return { ok: true, key: key.value, protocol, extensions, responseHeaders };
  } catch (err) {
    if (err instanceof HandshakeError) return rejectWith(err);
    throw err;
  }
}

function chooseSubprotocol(
  offered: string[],
  req: UpgradeRequestInfo,
  supported: ServerHandshakeOptions['subprotocols'],
): string | undefined {
  if (offered.length === 0 || supported === undefined) return undefined;
  if (typeof supported === 'function') {
    const chosen = supported(offered, req);
    if (!chosen) return undefined;
    if (!offered.includes(chosen)) {
      throw new UsageError('WS_ERR_INVALID_OPTION', `subprotocols() chose ${JSON.stringify(chosen)}, which the client did not offer`);
    }
    return chosen;
  }
  // Server preference order: the first supported protocol the client offered.
  return supported.find((p) => offered.includes(p));
}

/** The '101 Switching Protocols' response (RFC 6455 4.2.2 step 5), ending in CRLF CRLF. `key` is the client's Sec-WebSocket-Key. */
export function buildAcceptResponse(key: string, extraHeaders: string[]): string {
  let out =
    'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${computeAcceptKey(key)}\r\n`;
  for (const line of extraHeaders) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new UsageError('WS_ERR_INVALID_HEADER', `Header line ${JSON.stringify(line)} has no name`);
    assertHeaderLine(line.slice(0, colon), line.slice(colon + 1), 'WS_ERR_INVALID_HEADER');
    out += line + '\r\n';
  }
  return out + '\r\n';
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  413: 'Content Too Large',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
};

/** The headers buildRejectResponse always writes itself; same-named entries in `headers` are ignored. */
const REJECT_OWN_HEADERS = new Set(['connection', 'content-type', 'content-length']);

/**
 * A complete HTTP/1.1 error response: status line, Connection: close,
 * Content-Type: text/plain; charset=utf-8, Content-Length, the extra headers,
 * and `message` (default: the status text) as the body.
 */
export function buildRejectResponse(status: number, message?: string, headers: Record<string, string> = {}): string {
  if (!Number.isInteger(status) || status < 400 || status > 599) {
    throw new UsageError('WS_ERR_INVALID_STATUS', `Reject status must be a 4xx or 5xx integer, got ${status}`);
  }
  const text = STATUS_TEXT[status] ?? (status < 500 ? 'Client Error' : 'Server Error');
  const body = message ?? text;
  let out =
    `HTTP/1.1 ${status} ${text}\r\n` +
    'Connection: close\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body, 'utf8')}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    assertHeaderLine(name, value, 'WS_ERR_INVALID_HEADER');
    if (REJECT_OWN_HEADERS.has(name.toLowerCase())) continue;
    out += `${name}: ${value}\r\n`;
  }
  return out + '\r\n' + body;
}

// ---------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------

export interface ClientRequestOptions {
  /** host[:port] as for the Host header. */
  host: string;
  /** Path and query, starting with '/'. */
  path: string;
  /** Sec-WebSocket-Key, e.g. from generateClientKey(). */
  key: string;
  protocols?: string[];
  /** Sec-WebSocket-Extensions header value (e.g. formatExtensionHeader(offers)). */
  extensions?: string;
  origin?: string;
  /** Additional headers. The handshake's own headers cannot be overridden here. */
  headers?: Record<string, string>;
}

/** Headers buildClientRequest writes itself (or from a dedicated option). */
const CLIENT_OWN_HEADERS = new Set([
  'host',
  'upgrade',
  'connection',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
  'origin',
]);

/** Throws UsageError unless `protocols` are tokens (RFC 6455 4.1: "non-empty strings ... not including separator characters") and unique. */
export function assertValidSubprotocols(protocols: readonly string[]): void {
  const seen = new Set<string>();
  for (const p of protocols) {
    if (typeof p !== 'string' || !isToken(p)) throw new UsageError('WS_ERR_INVALID_SUBPROTOCOL', `Invalid subprotocol ${JSON.stringify(p)}`);
    // RFC 6455 4.1: "The elements that comprise this value ... MUST all be unique strings."
    if (seen.has(p)) throw new UsageError('WS_ERR_INVALID_SUBPROTOCOL', `Subprotocol ${JSON.stringify(p)} is listed twice`);
    seen.add(p);
  }
}

/** The client's opening handshake (RFC 6455 4.1), 'GET path HTTP/1.1\r\n...\r\n\r\n'. Throws UsageError on bad options. */
export function buildClientRequest(opts: ClientRequestOptions): string {
  // RFC 6455 4.1 step 2: "The request MUST contain a |Host| header field".
  if (!/^[\x21-\x7e]+$/.test(opts.host)) throw new UsageError('WS_ERR_INVALID_URL', `Invalid host ${JSON.stringify(opts.host)}`);
  // RFC 6455 4.1 step 1 / 3.: the request-target is the resource name: "/" path ["?" query].
  if (!/^\/[\x21-\x7e]*$/.test(opts.path)) throw new UsageError('WS_ERR_INVALID_URL', `Invalid path ${JSON.stringify(opts.path)}`);
  if (!isValidClientKey(opts.key)) throw new UsageError('WS_ERR_INVALID_KEY', 'Sec-WebSocket-Key must be base64 of 16 bytes');
  const protocols = opts.protocols ?? [];
  assertValidSubprotocols(protocols);

  let out =
    `GET ${opts.path} HTTP/1.1\r\n` +
    `Host: ${opts.host}\r\n` +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${opts.key}\r\n` +
    `Sec-WebSocket-Version: ${WS_VERSION}\r\n`;
  if (protocols.length > 0) out += `Sec-WebSocket-Protocol: ${protocols.join(', ')}\r\n`;
  if (opts.extensions !== undefined && opts.extensions !== '') {
    assertHeaderLine('Sec-WebSocket-Extensions', opts.extensions, 'WS_ERR_INVALID_HEADER');
    out += `Sec-WebSocket-Extensions: ${opts.extensions}\r\n`;
  }
  if (opts.origin !== undefined) {
    assertHeaderLine('Origin', opts.origin, 'WS_ERR_INVALID_HEADER');
    out += `Origin: ${opts.origin}\r\n`;
  }
  for (const [name, value] of Object.entries(opts.headers ?? {})) {
    assertHeaderLine(name, value, 'WS_ERR_INVALID_HEADER');
    if (CLIENT_OWN_HEADERS.has(name.toLowerCase())) {
      throw new UsageError('WS_ERR_INVALID_HEADER', `Header ${name} is set by the handshake itself; use the dedicated option`);
    }
    out += `${name}: ${value}\r\n`;
  }
  return out + '\r\n';
}

export interface ClientExtensionNegotiator {
  name: string;
  /** Validate the server's response params for this extension; return state; throw HandshakeError if unacceptable. */
  accept(response: ExtensionOffer): unknown;
}

/**
 * RFC 6455 4.1 client checks on the server's answer. Throws HandshakeError
 * (its `status` is the status received) when the connection must fail;
 * returns the chosen subprotocol and the negotiated extension states.
 */
export function validateServerResponse(
  res: ServerResponseInfo,
  key: string,
  offeredProtocols: string[],
  negotiators: ClientExtensionNegotiator[],
): { protocol: string | undefined; extensions: Map<string, unknown> } {
  const fail = (code: string, message: string) => new HandshakeError(code, res.status, message);
  const h = res.headers;

  // RFC 6455 4.1: "If the status code received from the server is not 101, the client
  // handles the response per HTTP [RFC2616] procedures."
  if (res.status !== 101) {
    throw fail('WS_ERR_HANDSHAKE_STATUS', `Unexpected server response: ${res.status}${res.statusText ? ' ' + res.statusText : ''}`);
  }
  // RFC 6455 4.1 item 2: "If the response lacks an |Upgrade| header field or the |Upgrade|
  // header field contains a value that is not an ASCII case-insensitive match for the
  // value "websocket", the client MUST _Fail the WebSocket Connection_."
  const upgrade = headerTokens(h['upgrade']);
  if (upgrade.length !== 1 || upgrade[0] !== 'websocket') {
    throw fail('WS_ERR_HANDSHAKE_UPGRADE', 'Server response Upgrade header is not "websocket"');
  }
  // RFC 6455 4.1 item 3: "If the response lacks a |Connection| header field or the
  // |Connection| header field doesn't contain a token that is an ASCII case-insensitive
  // match for the value "Upgrade", the client MUST _Fail the WebSocket Connection_."
  if (!headerTokens(h['connection']).includes('upgrade')) {
    throw fail('WS_ERR_HANDSHAKE_CONNECTION', 'Server response Connection header does not contain "Upgrade"');
  }
  // RFC 6455 4.1 item 4: "If the response lacks a |Sec-WebSocket-Accept| header field or
  // the |Sec-WebSocket-Accept| contains a value other than the base64-encoded SHA-1 of the
  // concatenation of the |Sec-WebSocket-Key| (as a string, not base64-decoded) with the
  // string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" ... the client MUST _Fail the WebSocket Connection_."
  const accept = singleHeader(h, 'sec-websocket-accept');
  if (accept.duplicate || accept.value !== computeAcceptKey(key)) {
    throw fail('WS_ERR_HANDSHAKE_ACCEPT', 'Server response Sec-WebSocket-Accept does not match the key');
  }

  // RFC 6455 4.1 item 6: "If the response includes a |Sec-WebSocket-Protocol| header field
  // and this header field indicates the use of a subprotocol that was not present in the
  // client's handshake ..., the client MUST _Fail the WebSocket Connection_."
  let protocol: string | undefined;
  const proto = singleHeader(h, 'sec-websocket-protocol');
  if (proto.duplicate) throw fail('WS_ERR_HANDSHAKE_PROTOCOL', 'Server sent Sec-WebSocket-Protocol more than once');
  if (proto.value !== undefined) {
    if (!offeredProtocols.includes(proto.value)) {
      throw fail(
        'WS_ERR_HANDSHAKE_PROTOCOL',
        offeredProtocols.length === 0
          ? `Server chose subprotocol ${JSON.stringify(proto.value)} but none was offered`
          : `Server chose subprotocol ${JSON.stringify(proto.value)}, which was not offered`,
      );
    }
    protocol = proto.value;
  }

  // RFC 6455 4.1 item 5: "If the response includes a |Sec-WebSocket-Extensions| header field
  // and this header field indicates the use of an extension that was not present in the
  // client's handshake ..., the client MUST _Fail the WebSocket Connection_."
  const extensions = new Map<string, unknown>();
  const extHeader = h['sec-websocket-extensions'];
  if (extHeader !== undefined) {
    let answers: ExtensionOffer[];
    try {
      answers = parseExtensionHeader(Array.isArray(extHeader) ? extHeader.join(',') : extHeader);
    } catch (err) {
      if (err instanceof HandshakeError) throw fail(err.code, err.message);
      throw err;
    }
    for (const answer of answers) {
      const neg = negotiators.find((n) => n.name === answer.name);
      if (!neg) throw fail('WS_ERR_HANDSHAKE_EXTENSION', `Server accepted extension ${answer.name}, which was not offered`);
      // A server accepts an extension once; a second answer for it is a protocol violation.
      if (extensions.has(answer.name)) throw fail('WS_ERR_HANDSHAKE_EXTENSION', `Server accepted extension ${answer.name} twice`);
      extensions.set(answer.name, neg.accept(answer));
    }
  }
  return { protocol, extensions };
}

// ---------------------------------------------------------------------------
// HTTP head parser
// ---------------------------------------------------------------------------

const CR = 0x0d;
const LF = 0x0a;

type HeadParserState = 'head' | 'done' | 'failed';

function malformed(why: string): HandshakeError {
  return new HandshakeError('WS_ERR_HANDSHAKE_MALFORMED', 400, `Malformed HTTP head: ${why}`);
}

const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/(\d)\.(\d)$/;
const STATUS_LINE = /^HTTP\/(\d)\.(\d) (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/;

/**
 * Incremental HTTP/1.1 head parser (request or response), sans-I/O. Feed it
 * bytes; once the blank line is seen, push() returns the parsed head and the
 * leftover bytes, which belong to the WebSocket stream. `rest` is a view into
 * the last chunk, not a copy.
 *
 * Strict on purpose: lines end in CRLF (a bare CR or LF is 400), obs-fold and
 * whitespace before the colon are 400 (RFC 7230 3.2.4), and the head including
 * the blank line may not exceed maxHeaderBytes (431).
 *
 * Header names are lower-cased. Unlike node, every repeated header becomes an
 * array (no joining, nothing discarded), so validators can spot duplicates.
 * After the head is returned, or after an error, the parser is finished: push()
 * rethrows the error, or throws UsageError once done.
 */
export class HttpHeadParser {
  readonly kind: 'request' | 'response';
  readonly maxHeaderBytes: number;
  private state: HeadParserState = 'head';
  private error: HandshakeError | undefined;
  private buf: Buffer;
  private len = 0;
  /** Progress through the terminator: 0 none, 1 CR, 2 CRLF, 3 CRLF CR, 4 complete. */
  private eol = 0;

  constructor(kind: 'request' | 'response', maxHeaderBytes: number = DEFAULT_MAX_HEADER_BYTES) {
    if (kind !== 'request' && kind !== 'response') throw new UsageError('WS_ERR_INVALID_OPTION', `Unknown head kind ${String(kind)}`);
    if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes < 1) {
      throw new UsageError('WS_ERR_INVALID_OPTION', `maxHeaderBytes must be a positive integer, got ${maxHeaderBytes}`);
    }
    this.kind = kind;
    this.maxHeaderBytes = maxHeaderBytes;
    this.buf = Buffer.allocUnsafe(Math.min(1024, maxHeaderBytes));
  }

  /** Returns null while incomplete. Throws HandshakeError (400 or 431) on bad input. */
  push(chunk: Uint8Array): null | { head: UpgradeRequestInfo | ServerResponseInfo; rest: Buffer } {
    if (this.state === 'failed') throw this.error!;
    if (this.state === 'done') throw new UsageError('WS_ERR_PARSER_DONE', 'HttpHeadParser already returned the head');
    try {
      return this.consume(chunk);
    } catch (err) {
      if (err instanceof HandshakeError) {
        this.state = 'failed';
        this.error = err;
      }
      throw err;
    }
  }

  private consume(chunk: Uint8Array): null | { head: UpgradeRequestInfo | ServerResponseInfo; rest: Buffer } {
    const room = this.maxHeaderBytes - this.len;
    const end = Math.min(chunk.length, room);
    let eol = this.eol;
    let i = 0;
    while (i < end && eol !== 4) {
      const b = chunk[i++]!;
      if (eol === 1 || eol === 3) {
        // RFC 7230 3: "HTTP-message = start-line *( header-field CRLF ) CRLF".
        if (b !== LF) throw malformed('CR not followed by LF');
        eol++;
      } else if (b === CR) {
        eol = eol === 2 ? 3 : 1;
      } else if (b === LF) {
        throw malformed('bare LF line ending');
      } else {
        eol = 0;
      }
    }
    if (eol !== 4 && chunk.length > room) {
      throw new HandshakeError('WS_ERR_HANDSHAKE_HEADERS_TOO_LARGE', 431, `HTTP head exceeds maxHeaderBytes (${this.maxHeaderBytes})`);
    }
    this.eol = eol;
    this.append(chunk, i);
    if (eol !== 4) return null;

    const text = this.buf.toString('latin1', 0, this.len - 4);
    const head = this.kind === 'request' ? parseRequestHead(text) : parseResponseHead(text);
    this.state = 'done';
    this.buf = Buffer.alloc(0);
    const rest = Buffer.from(chunk.buffer, chunk.byteOffset + i, chunk.length - i);
    return { head, rest };
  }

  private append(chunk: Uint8Array, n: number): void {
    if (n === 0) return;
    const need = this.len + n;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.maxHeaderBytes, Math.max(need, this.buf.length * 2)));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    this.buf.set(n === chunk.length ? chunk : chunk.subarray(0, n), this.len);
    this.len = need;
  }
}

/** Splits a head (without the final blank line) into its start line and header map. */
function splitHead(text: string): { start: string; headers: Headers } {
  const lines = text.split('\r\n');
  // RFC 7230 3.5: a server "SHOULD ignore at least one empty line (CRLF) received prior to the request-line".
  let n = 0;
  while (n < lines.length && lines[n] === '') n++;
  if (n >= lines.length) throw malformed('empty head');
  const start = lines[n]!;
  const headers: Headers = Object.create(null) as Headers;
  for (let k = n + 1; k < lines.length; k++) {
    const line = lines[k]!;
    // RFC 7230 3.2.4: obs-fold is rejected (a line starting with SP or HTAB).
    if (line === '' || line[0] === ' ' || line[0] === '\t') throw malformed('empty line or obsolete line folding inside the head');
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon);
    // RFC 7230 3.2.4: "No whitespace is allowed between the header field-name and colon."
    if (!isToken(name)) throw malformed(`invalid header line ${JSON.stringify(line.slice(0, 64))}`);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (BAD_VALUE_CHAR.test(value)) throw malformed(`control character in header ${name}`);
    const key = name.toLowerCase();
    const prev = headers[key];
    if (prev === undefined) headers[key] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else headers[key] = [prev, value];
  }
  return { start, headers };
}

function parseRequestHead(text: string): UpgradeRequestInfo {
  const { start, headers } = splitHead(text);
  // RFC 7230 3.1.1: request-line = method SP request-target SP HTTP-version CRLF
  const m = REQUEST_LINE.exec(start);
  if (!m) throw malformed(`invalid request line ${JSON.stringify(start.slice(0, 64))}`);
  return { method: m[1]!, url: m[2]!, httpVersion: `${m[3]}.${m[4]}`, headers };
}

function parseResponseHead(text: string): ServerResponseInfo {
  const { start, headers } = splitHead(text);
  // RFC 7230 3.1.2: status-line = HTTP-version SP status-code SP reason-phrase CRLF
  const m = STATUS_LINE.exec(start);
  if (!m) throw malformed(`invalid status line ${JSON.stringify(start.slice(0, 64))}`);
  return { status: Number(m[3]), statusText: m[4] ?? '', httpVersion: `${m[1]}.${m[2]}`, headers };
}
