import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HandshakeError, UsageError } from '../../../src/protocol/errors.js';
import type { ExtensionOffer } from '../../../src/protocol/extensions.js';
import {
  WS_GUID,
  HttpHeadParser,
  buildAcceptResponse,
  buildClientRequest,
  buildRejectResponse,
  computeAcceptKey,
  generateClientKey,
  headerList,
  headerTokens,
  isValidClientKey,
  validateServerResponse,
  validateUpgradeRequest,
  type ClientExtensionNegotiator,
  type ServerExtensionNegotiator,
  type ServerHandshakeOptions,
  type ServerHandshakeResult,
  type ServerResponseInfo,
  type UpgradeRequestInfo,
} from '../../../src/protocol/handshake.js';

// RFC 6455 1.3: the sample nonce and its accept value.
const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const RFC_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

function request(headers: UpgradeRequestInfo['headers'] = {}, over: Partial<UpgradeRequestInfo> = {}): UpgradeRequestInfo {
  const base: UpgradeRequestInfo['headers'] = {
    host: 'server.example.com',
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': RFC_KEY,
    'sec-websocket-version': '13',
  };
  const merged: UpgradeRequestInfo['headers'] = { ...base, ...headers };
  for (const k of Object.keys(merged)) if (merged[k] === undefined) delete merged[k];
  return { method: 'GET', httpVersion: '1.1', url: '/chat', headers: merged, ...over };
}

function expectOk(r: ServerHandshakeResult) {
  if (!r.ok) assert.fail(`expected ok, got ${r.status} ${r.error.code}: ${r.error.message}`);
  return r;
}

function expectReject(r: ServerHandshakeResult, status: number, code: string) {
  if (r.ok) assert.fail(`expected rejection ${status} ${code}, got ok`);
  assert.equal(r.status, status);
  assert.equal(r.error.status, status);
  assert.equal(r.error.code, code);
  assert.ok(r.error instanceof HandshakeError);
  return r;
}

function response(headers: ServerResponseInfo['headers'] = {}, over: Partial<ServerResponseInfo> = {}): ServerResponseInfo {
  const base: ServerResponseInfo['headers'] = {
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-accept': RFC_ACCEPT,
  };
  const merged: ServerResponseInfo['headers'] = { ...base, ...headers };
  for (const k of Object.keys(merged)) if (merged[k] === undefined) delete merged[k];
  return { status: 101, statusText: 'Switching Protocols', httpVersion: '1.1', headers: merged, ...over };
}

function throwsHandshake(fn: () => unknown, status: number, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HandshakeError, `expected HandshakeError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.status, status);
    return true;
  });
}

function throwsUsage(fn: () => unknown, code?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UsageError, `expected UsageError, got ${String(err)}`);
    if (code) assert.equal(err.code, code);
    return true;
  });
}

const bytes = (s: string) => Buffer.from(s, 'latin1');

describe('keys', () => {
  it('computes the RFC 6455 1.3 example accept value', () => {
    assert.equal(WS_GUID, '258EAFA5-E914-47DA-95CA-C5AB0DC85B11');
    assert.equal(computeAcceptKey(RFC_KEY), RFC_ACCEPT);
  });

  it('generates random valid 16-byte keys', () => {
    const a = generateClientKey();
    const b = generateClientKey();
    assert.ok(isValidClientKey(a));
    assert.equal(Buffer.from(a, 'base64').length, 16);
    assert.notEqual(a, b);
  });

  it('accepts only base64 of exactly 16 bytes', () => {
    assert.equal(isValidClientKey(RFC_KEY), true);
    assert.equal(isValidClientKey('AAAAAAAAAAAAAAAAAAAAAA=='), true);
    assert.equal(isValidClientKey(''), false);
    assert.equal(isValidClientKey('dGhlIHNhbXBsZSBub25jZQ'), false, 'missing padding');
    assert.equal(isValidClientKey(Buffer.alloc(15).toString('base64')), false, '15 bytes');
    assert.equal(isValidClientKey(Buffer.alloc(17).toString('base64')), false, '17 bytes');
    assert.equal(isValidClientKey('dGhlIHNhbXBsZSBub25jZQ=!'), false);
    assert.equal(isValidClientKey('dGhlIHNhbXBsZSBub25j*Q=='), false);
    assert.equal(isValidClientKey(` ${RFC_KEY}`), false);
  });
});

describe('header helpers', () => {
  it('headerTokens splits, trims, lower-cases and drops empty elements', () => {
    assert.deepEqual(headerTokens(undefined), []);
    assert.deepEqual(headerTokens('keep-alive, Upgrade'), ['keep-alive', 'upgrade']);
    assert.deepEqual(headerTokens([' A ,', ',b', 'C']), ['a', 'b', 'c']);
  });

  it('headerList keeps case', () => {
    assert.deepEqual(headerList('Chat, superChat'), ['Chat', 'superChat']);
  });
});

describe('validateUpgradeRequest: accepting', () => {
  it('accepts the RFC 6455 1.3 example request and builds the example response', () => {
    const r = expectOk(validateUpgradeRequest(request({ origin: 'http://example.com' })));
    assert.equal(r.key, RFC_KEY);
    assert.equal(r.protocol, undefined);
    assert.equal(r.extensions.size, 0);
    assert.deepEqual(r.responseHeaders, []);
    assert.equal(
      buildAcceptResponse(r.key, r.responseHeaders),
      'HTTP/1.1 101 Switching Protocols\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\n` +
        '\r\n',
    );
  });

  it('treats Upgrade and Connection as case-insensitive token lists', () => {
    expectOk(validateUpgradeRequest(request({ upgrade: 'WebSocket', connection: 'keep-alive, UPGRADE' })));
    expectOk(validateUpgradeRequest(request({ upgrade: ['h2c', 'websocket'], connection: ['keep-alive', 'upgrade'] })));
  });

  it('accepts HTTP versions above 1.1', () => {
    expectOk(validateUpgradeRequest(request({}, { httpVersion: '1.2' })));
    expectOk(validateUpgradeRequest(request({}, { httpVersion: '2.0' })));
  });

  it('accepts a single-element array for a single-valued header', () => {
    expectOk(validateUpgradeRequest(request({ 'sec-websocket-key': [RFC_KEY], host: ['h'] })));
  });
});

describe('validateUpgradeRequest: rejections', () => {
  const cases: Array<[string, UpgradeRequestInfo, number, string]> = [
    ['POST method', request({}, { method: 'POST' }), 405, 'WS_ERR_HANDSHAKE_METHOD'],
    ['lower-case get (methods are case-sensitive)', request({}, { method: 'get' }), 405, 'WS_ERR_HANDSHAKE_METHOD'],
    ['HTTP/1.0', request({}, { httpVersion: '1.0' }), 400, 'WS_ERR_HANDSHAKE_HTTP_VERSION'],
    ['HTTP version garbage', request({}, { httpVersion: 'x' }), 400, 'WS_ERR_HANDSHAKE_HTTP_VERSION'],
    ['missing Host', request({ host: undefined }), 400, 'WS_ERR_HANDSHAKE_HOST'],
    ['empty Host', request({ host: '' }), 400, 'WS_ERR_HANDSHAKE_HOST'],
    ['duplicate Host', request({ host: ['a', 'b'] }), 400, 'WS_ERR_HANDSHAKE_DUPLICATE_HEADER'],
    ['missing Upgrade', request({ upgrade: undefined }), 400, 'WS_ERR_HANDSHAKE_UPGRADE'],
    ['Upgrade without websocket', request({ upgrade: 'h2c' }), 400, 'WS_ERR_HANDSHAKE_UPGRADE'],
    ['missing Connection', request({ connection: undefined }), 400, 'WS_ERR_HANDSHAKE_CONNECTION'],
    ['Connection without upgrade', request({ connection: 'keep-alive' }), 400, 'WS_ERR_HANDSHAKE_CONNECTION'],
    ['Connection substring only', request({ connection: 'upgrades' }), 400, 'WS_ERR_HANDSHAKE_CONNECTION'],
    ['missing Sec-WebSocket-Version', request({ 'sec-websocket-version': undefined }), 426, 'WS_ERR_HANDSHAKE_VERSION'],
    ['Sec-WebSocket-Version 8', request({ 'sec-websocket-version': '8' }), 426, 'WS_ERR_HANDSHAKE_VERSION'],
    ['duplicate Sec-WebSocket-Version (array)', request({ 'sec-websocket-version': ['13', '13'] }), 400, 'WS_ERR_HANDSHAKE_DUPLICATE_HEADER'],
    ['duplicate Sec-WebSocket-Version (joined)', request({ 'sec-websocket-version': '13, 13' }), 400, 'WS_ERR_HANDSHAKE_DUPLICATE_HEADER'],
    ['missing Sec-WebSocket-Key', request({ 'sec-websocket-key': undefined }), 400, 'WS_ERR_HANDSHAKE_KEY'],
    ['short Sec-WebSocket-Key', request({ 'sec-websocket-key': 'AAAA' }), 400, 'WS_ERR_HANDSHAKE_KEY'],
    ['non-base64 Sec-WebSocket-Key', request({ 'sec-websocket-key': 'not base64 at all!!!!!==' }), 400, 'WS_ERR_HANDSHAKE_KEY'],
    ['Sec-WebSocket-Key of 17 bytes', request({ 'sec-websocket-key': Buffer.alloc(17).toString('base64') }), 400, 'WS_ERR_HANDSHAKE_KEY'],
    ['duplicate Sec-WebSocket-Key (array)', request({ 'sec-websocket-key': [RFC_KEY, RFC_KEY] }), 400, 'WS_ERR_HANDSHAKE_DUPLICATE_HEADER'],
    ['duplicate Sec-WebSocket-Key (joined)', request({ 'sec-websocket-key': `${RFC_KEY}, ${RFC_KEY}` }), 400, 'WS_ERR_HANDSHAKE_DUPLICATE_HEADER'],
    ['duplicate Origin', request({ origin: ['https://a.example', 'https://b.example'] }), 400, 'WS_ERR_HANDSHAKE_DUPLICATE_HEADER'],
    ['non-token subprotocol', request({ 'sec-websocket-protocol': 'chat, a b' }), 400, 'WS_ERR_HANDSHAKE_PROTOCOL'],
    ['duplicate subprotocol', request({ 'sec-websocket-protocol': ['chat', 'chat'] }), 400, 'WS_ERR_HANDSHAKE_PROTOCOL'],
  ];
  for (const [name, req, status, code] of cases) {
    it(`${name} -> ${status} ${code}`, () => {
      expectReject(validateUpgradeRequest(req), status, code);
    });
  }

  it('405 carries Allow: GET', () => {
    const r = expectReject(validateUpgradeRequest(request({}, { method: 'PUT' })), 405, 'WS_ERR_HANDSHAKE_METHOD');
    assert.deepEqual(r.headers, { Allow: 'GET' });
  });

  it('426 carries Sec-WebSocket-Version: 13', () => {
    const r = expectReject(validateUpgradeRequest(request({ 'sec-websocket-version': '7' })), 426, 'WS_ERR_HANDSHAKE_VERSION');
    assert.deepEqual(r.headers, { 'Sec-WebSocket-Version': '13' });
  });

  it('other rejections carry no extra headers', () => {
    const r = expectReject(validateUpgradeRequest(request({ upgrade: undefined })), 400, 'WS_ERR_HANDSHAKE_UPGRADE');
    assert.deepEqual(r.headers, {});
  });

  it('checks the method before anything else', () => {
    expectReject(validateUpgradeRequest({ method: 'POST', httpVersion: '1.0', url: '/', headers: {} }), 405, 'WS_ERR_HANDSHAKE_METHOD');
  });
});

describe('validateUpgradeRequest: origin policy', () => {
  const allow: ServerHandshakeOptions = { origin: ['https://a.example', 'https://b.example:8443'] };

  it('accepts a listed origin, compared case-insensitively', () => {
    expectOk(validateUpgradeRequest(request({ origin: 'https://a.example' }), allow));
    expectOk(validateUpgradeRequest(request({ origin: 'HTTPS://A.EXAMPLE' }), allow));
    expectOk(validateUpgradeRequest(request({ origin: 'https://b.example:8443' }), allow));
  });

  it('refuses an unlisted origin with 403', () => {
    expectReject(validateUpgradeRequest(request({ origin: 'https://evil.example' }), allow), 403, 'WS_ERR_ORIGIN_FORBIDDEN');
    expectReject(validateUpgradeRequest(request({ origin: 'https://b.example' }), allow), 403, 'WS_ERR_ORIGIN_FORBIDDEN');
    expectReject(validateUpgradeRequest(request({ origin: 'null' }), allow), 403, 'WS_ERR_ORIGIN_FORBIDDEN');
  });

  it('allows a missing Origin unless requireOrigin', () => {
    expectOk(validateUpgradeRequest(request(), allow));
    expectOk(validateUpgradeRequest(request({ origin: 'https://any.example' })));
    expectReject(validateUpgradeRequest(request(), { ...allow, requireOrigin: true }), 403, 'WS_ERR_ORIGIN_REQUIRED');
    expectReject(validateUpgradeRequest(request(), { requireOrigin: true }), 403, 'WS_ERR_ORIGIN_REQUIRED');
    expectOk(validateUpgradeRequest(request({ origin: 'https://a.example' }), { ...allow, requireOrigin: true }));
  });

  it('calls an origin function with the origin (or undefined) and the request', () => {
    const seen: Array<string | undefined> = [];
    const opts: ServerHandshakeOptions = {
      origin: (origin, req) => {
        seen.push(origin);
        assert.equal(req.url, '/chat');
        return origin === 'https://ok.example';
      },
    };
    expectOk(validateUpgradeRequest(request({ origin: 'https://ok.example' }), opts));
    expectReject(validateUpgradeRequest(request({ origin: 'https://no.example' }), opts), 403, 'WS_ERR_ORIGIN_FORBIDDEN');
    expectReject(validateUpgradeRequest(request(), opts), 403, 'WS_ERR_ORIGIN_FORBIDDEN');
    assert.deepEqual(seen, ['https://ok.example', 'https://no.example', undefined]);
  });

  it('turns a HandshakeError thrown by the origin function into a rejection', () => {
    const opts: ServerHandshakeOptions = {
      origin: () => {
        throw new HandshakeError('APP_BANNED', 401, 'nope');
      },
    };
    expectReject(validateUpgradeRequest(request(), opts), 401, 'APP_BANNED');
  });

  it('lets other errors from callbacks propagate', () => {
    assert.throws(
      () => validateUpgradeRequest(request(), { origin: () => { throw new TypeError('bug'); } }),
      TypeError,
    );
  });
});

describe('validateUpgradeRequest: subprotocols', () => {
  it('picks the first server-preferred protocol the client offered', () => {
    const r = expectOk(
      validateUpgradeRequest(request({ 'sec-websocket-protocol': 'chat, superchat, lifeline.v1' }), {
        subprotocols: ['lifeline.v1', 'superchat'],
      }),
    );
    assert.equal(r.protocol, 'lifeline.v1');
    assert.deepEqual(r.responseHeaders, ['Sec-WebSocket-Protocol: lifeline.v1']);
  });

  it('combines repeated Sec-WebSocket-Protocol lines', () => {
    const r = expectOk(
      validateUpgradeRequest(request({ 'sec-websocket-protocol': ['chat', 'superchat'] }), { subprotocols: ['superchat'] }),
    );
    assert.equal(r.protocol, 'superchat');
  });

  it('compares subprotocols case-sensitively', () => {
    const r = expectOk(validateUpgradeRequest(request({ 'sec-websocket-protocol': 'Chat' }), { subprotocols: ['chat'] }));
    assert.equal(r.protocol, undefined);
  });

  it('selects none (and sends no header) when nothing matches or nothing is configured', () => {
    let r = expectOk(validateUpgradeRequest(request({ 'sec-websocket-protocol': 'chat' }), { subprotocols: ['other'] }));
    assert.equal(r.protocol, undefined);
    assert.deepEqual(r.responseHeaders, []);
    r = expectOk(validateUpgradeRequest(request({ 'sec-websocket-protocol': 'chat' })));
    assert.equal(r.protocol, undefined);
    r = expectOk(validateUpgradeRequest(request(), { subprotocols: ['chat'] }));
    assert.equal(r.protocol, undefined);
  });

  it('lets a function choose from the offered list', () => {
    let calls = 0;
    const opts: ServerHandshakeOptions = {
      subprotocols: (offered, req) => {
        calls++;
        assert.deepEqual(offered, ['a', 'b', 'c']);
        assert.equal(req.method, 'GET');
        return offered[1];
      },
    };
    const r = expectOk(validateUpgradeRequest(request({ 'sec-websocket-protocol': 'a, b, c' }), opts));
    assert.equal(r.protocol, 'b');
    assert.deepEqual(r.responseHeaders, ['Sec-WebSocket-Protocol: b']);
    expectOk(validateUpgradeRequest(request(), opts));
    assert.equal(calls, 1, 'not called when the client offered nothing');
  });

  it('a function returning false or undefined selects none', () => {
    for (const ret of [false, undefined] as const) {
      const r = expectOk(validateUpgradeRequest(request({ 'sec-websocket-protocol': 'a' }), { subprotocols: () => ret }));
      assert.equal(r.protocol, undefined);
      assert.deepEqual(r.responseHeaders, []);
    }
  });

  it('a function choosing an unoffered protocol is a UsageError', () => {
    throwsUsage(
      () => validateUpgradeRequest(request({ 'sec-websocket-protocol': 'a' }), { subprotocols: () => 'z' }),
      'WS_ERR_INVALID_OPTION',
    );
  });
});

describe('validateUpgradeRequest: extension negotiation', () => {
  function negotiator(name: string, decide: (offers: ExtensionOffer[]) => ReturnType<ServerExtensionNegotiator['accept']>) {
    const seen: ExtensionOffer[][] = [];
    const neg: ServerExtensionNegotiator = {
      name,
      accept(offers) {
        seen.push(offers);
        return decide(offers);
      },
    };
    return { neg, seen };
  }

  const header = 'permessage-deflate; client_max_window_bits, x-foo, permessage-deflate';

  it('passes each negotiator its offers in client order and reports accepted ones', () => {
    const deflate = negotiator('permessage-deflate', (offers) => ({
      response: { name: 'permessage-deflate', params: [['server_no_context_takeover', true]] },
      state: { offers: offers.length },
    }));
    const r = expectOk(validateUpgradeRequest(request({ 'sec-websocket-extensions': header }), { extensions: [deflate.neg] }));
    assert.deepEqual(deflate.seen, [
      [
        { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
        { name: 'permessage-deflate', params: [] },
      ],
    ]);
    assert.deepEqual([...r.extensions], [['permessage-deflate', { offers: 2 }]]);
    assert.deepEqual(r.responseHeaders, ['Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover']);
  });

  it('lists several accepted extensions in negotiator order in one header', () => {
    const foo = negotiator('x-foo', () => ({ response: { name: 'x-foo', params: [['level', '3']] }, state: 'foo' }));
    const deflate = negotiator('permessage-deflate', () => ({ response: { name: 'permessage-deflate', params: [] }, state: 'pmd' }));
    const r = expectOk(
      validateUpgradeRequest(request({ 'sec-websocket-extensions': header, 'sec-websocket-protocol': 'p' }), {
        extensions: [foo.neg, deflate.neg],
        subprotocols: ['p'],
      }),
    );
    assert.deepEqual([...r.extensions.keys()], ['x-foo', 'permessage-deflate']);
    assert.deepEqual(r.responseHeaders, ['Sec-WebSocket-Protocol: p', 'Sec-WebSocket-Extensions: x-foo; level=3, permessage-deflate']);
  });

  it('a declining negotiator adds nothing', () => {
    const deflate = negotiator('permessage-deflate', () => null);
    const r = expectOk(validateUpgradeRequest(request({ 'sec-websocket-extensions': header }), { extensions: [deflate.neg] }));
    assert.equal(deflate.seen.length, 1);
    assert.equal(r.extensions.size, 0);
    assert.deepEqual(r.responseHeaders, []);
  });

  it('a negotiator is not called when its extension was not offered', () => {
    const bar = negotiator('x-bar', () => assert.fail('must not be called'));
    const r = expectOk(validateUpgradeRequest(request({ 'sec-websocket-extensions': 'x-foo' }), { extensions: [bar.neg] }));
    assert.equal(r.extensions.size, 0);
  });

  it('joins repeated Sec-WebSocket-Extensions lines', () => {
    const foo = negotiator('x-foo', (offers) => ({ response: { name: 'x-foo', params: [] }, state: offers.length }));
    const r = expectOk(
      validateUpgradeRequest(request({ 'sec-websocket-extensions': ['x-foo; a=1', 'x-foo; a=2'] }), { extensions: [foo.neg] }),
    );
    assert.equal(r.extensions.get('x-foo'), 2);
  });

  it('a negotiator throwing HandshakeError rejects the handshake', () => {
    const deflate = negotiator('permessage-deflate', () => {
      throw new HandshakeError('WS_ERR_INVALID_EXTENSION_PARAM', 400, 'bad params');
    });
    expectReject(
      validateUpgradeRequest(request({ 'sec-websocket-extensions': header }), { extensions: [deflate.neg] }),
      400,
      'WS_ERR_INVALID_EXTENSION_PARAM',
    );
  });

  it('a malformed Sec-WebSocket-Extensions header is 400', () => {
    const deflate = negotiator('permessage-deflate', () => null);
    expectReject(
      validateUpgradeRequest(request({ 'sec-websocket-extensions': 'permessage-deflate; =' }), { extensions: [deflate.neg] }),
      400,
      'WS_ERR_INVALID_EXTENSION_HEADER',
    );
  });

  it('ignores the extensions header entirely when no negotiators are configured', () => {
    const r = expectOk(validateUpgradeRequest(request({ 'sec-websocket-extensions': ';;;' })));
    assert.equal(r.extensions.size, 0);
  });

  it('a negotiator answering with another name is a UsageError', () => {
    const foo = negotiator('x-foo', () => ({ response: { name: 'x-other', params: [] }, state: null }));
    throwsUsage(() => validateUpgradeRequest(request({ 'sec-websocket-extensions': 'x-foo' }), { extensions: [foo.neg] }));
  });
});

describe('buildAcceptResponse / buildRejectResponse', () => {
  it('appends extra header lines', () => {
    assert.equal(
      buildAcceptResponse(RFC_KEY, ['Sec-WebSocket-Protocol: chat']),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n\r\n`,
    );
  });

  it('refuses header injection in extra lines', () => {
    throwsUsage(() => buildAcceptResponse(RFC_KEY, ['X-A: b\r\nX-Injected: c']));
    throwsUsage(() => buildAcceptResponse(RFC_KEY, ['no colon']));
    throwsUsage(() => buildAcceptResponse(RFC_KEY, ['Bad Name: x']));
  });

  it('builds a complete 426 answer', () => {
    assert.equal(
      buildRejectResponse(426, 'Use version 13', { 'Sec-WebSocket-Version': '13' }),
      'HTTP/1.1 426 Upgrade Required\r\n' +
        'Connection: close\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        'Content-Length: 14\r\n' +
        'Sec-WebSocket-Version: 13\r\n' +
        '\r\n' +
        'Use version 13',
    );
  });

  it('uses the status text as default body and counts UTF-8 bytes', () => {
    assert.ok(buildRejectResponse(403).endsWith('Content-Length: 9\r\n\r\nForbidden'));
    assert.ok(buildRejectResponse(400, 'é').includes('Content-Length: 2\r\n'));
    assert.ok(buildRejectResponse(499).startsWith('HTTP/1.1 499 Client Error\r\n'));
  });

  it('does not let extra headers duplicate its own', () => {
    const s = buildRejectResponse(400, 'x', { 'content-length': '999', Connection: 'keep-alive', Allow: 'GET' });
    assert.equal(s.match(/content-length/gi)?.length, 1);
    assert.ok(s.includes('Connection: close\r\n'));
    assert.ok(!s.includes('keep-alive'));
    assert.ok(s.includes('Allow: GET\r\n'));
  });

  it('validates status and headers', () => {
    throwsUsage(() => buildRejectResponse(200), 'WS_ERR_INVALID_STATUS');
    throwsUsage(() => buildRejectResponse(4000));
    throwsUsage(() => buildRejectResponse(400, 'x', { 'X-A': 'a\r\nb' }));
  });

  it('round-trips a rejection from validateUpgradeRequest', () => {
    const r = validateUpgradeRequest(request({ 'sec-websocket-version': '8' }));
    assert.equal(r.ok, false);
    if (r.ok) return;
    const wire = buildRejectResponse(r.status, r.error.message, r.headers);
    const p = new HttpHeadParser('response');
    const out = p.push(bytes(wire));
    assert.ok(out);
    const head = out.head as ServerResponseInfo;
    assert.equal(head.status, 426);
    assert.equal(head.headers['sec-websocket-version'], '13');
    assert.equal(out.rest.toString(), r.error.message);
  });
});

describe('buildClientRequest', () => {
  it('builds the RFC 6455 1.3 style request', () => {
    assert.equal(
      buildClientRequest({
        host: 'server.example.com',
        path: '/chat',
        key: RFC_KEY,
        protocols: ['chat', 'superchat'],
        origin: 'http://example.com',
      }),
      'GET /chat HTTP/1.1\r\n' +
        'Host: server.example.com\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${RFC_KEY}\r\n` +
        'Sec-WebSocket-Version: 13\r\n' +
        'Sec-WebSocket-Protocol: chat, superchat\r\n' +
        'Origin: http://example.com\r\n' +
        '\r\n',
    );
  });

  it('adds extensions and extra headers, omits empty optional ones', () => {
    const s = buildClientRequest({
      host: 'h:8080',
      path: '/a?b=c',
      key: RFC_KEY,
      protocols: [],
      extensions: 'permessage-deflate; client_max_window_bits',
      headers: { 'X-Trace': 'abc' },
    });
    assert.ok(s.startsWith('GET /a?b=c HTTP/1.1\r\nHost: h:8080\r\n'));
    assert.ok(s.includes('Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n'));
    assert.ok(s.endsWith('X-Trace: abc\r\n\r\n'));
    assert.ok(!s.includes('Sec-WebSocket-Protocol'));
    assert.ok(!s.includes('Origin'));
    assert.ok(!buildClientRequest({ host: 'h', path: '/', key: RFC_KEY, extensions: '' }).includes('Extensions'));
  });

  it('rejects invalid or duplicate subprotocols', () => {
    for (const protocols of [['a b'], [''], ['chat', 'chat'], ['a,b'], ['é']]) {
      throwsUsage(() => buildClientRequest({ host: 'h', path: '/', key: RFC_KEY, protocols }), 'WS_ERR_INVALID_SUBPROTOCOL');
    }
  });

  it('rejects bad host, path, key and headers', () => {
    throwsUsage(() => buildClientRequest({ host: '', path: '/', key: RFC_KEY }));
    throwsUsage(() => buildClientRequest({ host: 'h\r\nX: y', path: '/', key: RFC_KEY }));
    throwsUsage(() => buildClientRequest({ host: 'h', path: 'chat', key: RFC_KEY }));
    throwsUsage(() => buildClientRequest({ host: 'h', path: '/a b', key: RFC_KEY }));
    throwsUsage(() => buildClientRequest({ host: 'h', path: '/', key: 'short' }), 'WS_ERR_INVALID_KEY');
    throwsUsage(() => buildClientRequest({ host: 'h', path: '/', key: RFC_KEY, headers: { 'X-A': 'a\nb' } }));
    throwsUsage(() => buildClientRequest({ host: 'h', path: '/', key: RFC_KEY, headers: { 'Sec-WebSocket-Key': RFC_KEY } }));
    throwsUsage(() => buildClientRequest({ host: 'h', path: '/', key: RFC_KEY, origin: 'a\r\n' }));
  });
});

describe('validateServerResponse', () => {
  it('accepts the RFC 6455 1.3 example response', () => {
    const r = validateServerResponse(response(), RFC_KEY, [], []);
    assert.equal(r.protocol, undefined);
    assert.equal(r.extensions.size, 0);
  });

  it('is case-insensitive about Upgrade and Connection', () => {
    validateServerResponse(response({ upgrade: 'WebSocket', connection: 'keep-alive, upgrade' }), RFC_KEY, [], []);
  });

  it('a non-101 status fails with that status', () => {
    throwsHandshake(() => validateServerResponse(response({}, { status: 200, statusText: 'OK' }), RFC_KEY, [], []), 200, 'WS_ERR_HANDSHAKE_STATUS');
    throwsHandshake(() => validateServerResponse(response({}, { status: 403 }), RFC_KEY, [], []), 403, 'WS_ERR_HANDSHAKE_STATUS');
  });

  it('fails on a missing or wrong Upgrade header', () => {
    throwsHandshake(() => validateServerResponse(response({ upgrade: undefined }), RFC_KEY, [], []), 101, 'WS_ERR_HANDSHAKE_UPGRADE');
    throwsHandshake(() => validateServerResponse(response({ upgrade: 'h2c' }), RFC_KEY, [], []), 101, 'WS_ERR_HANDSHAKE_UPGRADE');
    throwsHandshake(() => validateServerResponse(response({ upgrade: 'websocket, h2c' }), RFC_KEY, [], []), 101, 'WS_ERR_HANDSHAKE_UPGRADE');
  });

  it('fails on a missing Connection: upgrade', () => {
    throwsHandshake(() => validateServerResponse(response({ connection: undefined }), RFC_KEY, [], []), 101, 'WS_ERR_HANDSHAKE_CONNECTION');
    throwsHandshake(() => validateServerResponse(response({ connection: 'close' }), RFC_KEY, [], []), 101, 'WS_ERR_HANDSHAKE_CONNECTION');
  });

  it('fails on a wrong, missing or duplicated Sec-WebSocket-Accept', () => {
    throwsHandshake(() => validateServerResponse(response(), generateClientKey(), [], []), 101, 'WS_ERR_HANDSHAKE_ACCEPT');
    throwsHandshake(() => validateServerResponse(response({ 'sec-websocket-accept': undefined }), RFC_KEY, [], []), 101, 'WS_ERR_HANDSHAKE_ACCEPT');
    throwsHandshake(
      () => validateServerResponse(response({ 'sec-websocket-accept': [RFC_ACCEPT, RFC_ACCEPT] }), RFC_KEY, [], []),
      101,
      'WS_ERR_HANDSHAKE_ACCEPT',
    );
  });

  it('returns an offered subprotocol and tolerates none chosen', () => {
    assert.equal(validateServerResponse(response({ 'sec-websocket-protocol': 'chat' }), RFC_KEY, ['x', 'chat'], []).protocol, 'chat');
    assert.equal(validateServerResponse(response(), RFC_KEY, ['x', 'chat'], []).protocol, undefined);
  });

  it('fails on an unoffered subprotocol, or any when none was offered', () => {
    const p = 'WS_ERR_HANDSHAKE_PROTOCOL';
    throwsHandshake(() => validateServerResponse(response({ 'sec-websocket-protocol': 'other' }), RFC_KEY, ['chat'], []), 101, p);
    throwsHandshake(() => validateServerResponse(response({ 'sec-websocket-protocol': 'chat' }), RFC_KEY, [], []), 101, p);
    throwsHandshake(() => validateServerResponse(response({ 'sec-websocket-protocol': 'chat, x' }), RFC_KEY, ['chat', 'x'], []), 101, p);
    throwsHandshake(() => validateServerResponse(response({ 'sec-websocket-protocol': ['chat', 'x'] }), RFC_KEY, ['chat', 'x'], []), 101, p);
    throwsHandshake(() => validateServerResponse(response({ 'sec-websocket-protocol': '' }), RFC_KEY, ['chat'], []), 101, p);
  });

  const deflate = (seen: ExtensionOffer[] = []): ClientExtensionNegotiator => ({
    name: 'permessage-deflate',
    accept(res) {
      seen.push(res);
      return { negotiated: res.params };
    },
  });

  it('hands each accepted extension to its negotiator', () => {
    const seen: ExtensionOffer[] = [];
    const r = validateServerResponse(
      response({ 'sec-websocket-extensions': 'permessage-deflate; server_no_context_takeover' }),
      RFC_KEY,
      [],
      [deflate(seen)],
    );
    assert.deepEqual(seen, [{ name: 'permessage-deflate', params: [['server_no_context_takeover', true]] }]);
    assert.deepEqual(r.extensions.get('permessage-deflate'), { negotiated: [['server_no_context_takeover', true]] });
  });

  it('fails on an unoffered or repeated extension', () => {
    const e = 'WS_ERR_HANDSHAKE_EXTENSION';
    throwsHandshake(() => validateServerResponse(response({ 'sec-websocket-extensions': 'x-foo' }), RFC_KEY, [], []), 101, e);
    throwsHandshake(() => validateServerResponse(response({ 'sec-websocket-extensions': 'x-foo' }), RFC_KEY, [], [deflate()]), 101, e);
    throwsHandshake(
      () => validateServerResponse(response({ 'sec-websocket-extensions': 'permessage-deflate, permessage-deflate' }), RFC_KEY, [], [deflate()]),
      101,
      e,
    );
    throwsHandshake(
      () => validateServerResponse(response({ 'sec-websocket-extensions': ['permessage-deflate', 'permessage-deflate'] }), RFC_KEY, [], [deflate()]),
      101,
      e,
    );
  });

  it('fails on a malformed extensions header, with the received status', () => {
    throwsHandshake(
      () => validateServerResponse(response({ 'sec-websocket-extensions': 'permessage-deflate;' }), RFC_KEY, [], [deflate()]),
      101,
      'WS_ERR_INVALID_EXTENSION_HEADER',
    );
  });

  it('propagates a HandshakeError from a negotiator', () => {
    const picky: ClientExtensionNegotiator = {
      name: 'permessage-deflate',
      accept() {
        throw new HandshakeError('WS_ERR_INVALID_EXTENSION_PARAM', 101, 'no');
      },
    };
    throwsHandshake(
      () => validateServerResponse(response({ 'sec-websocket-extensions': 'permessage-deflate' }), RFC_KEY, [], [picky]),
      101,
      'WS_ERR_INVALID_EXTENSION_PARAM',
    );
  });
});

describe('HttpHeadParser', () => {
  // RFC 6455 1.3 client handshake, followed by the first bytes of a masked frame.
  const RFC_REQUEST =
    'GET /chat HTTP/1.1\r\n' +
    'Host: server.example.com\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
    'Origin: http://example.com\r\n' +
    'Sec-WebSocket-Protocol: chat, superchat\r\n' +
    'Sec-WebSocket-Version: 13\r\n' +
    '\r\n';
  // RFC 6455 5.7: a single-frame masked text message "Hello".
  const FRAME = Buffer.from('818537fa213d7f9f4d5158', 'hex');

  const expectedHead: UpgradeRequestInfo = {
    method: 'GET',
    url: '/chat',
    httpVersion: '1.1',
    headers: {
      host: 'server.example.com',
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': RFC_KEY,
      origin: 'http://example.com',
      'sec-websocket-protocol': 'chat, superchat',
      'sec-websocket-version': '13',
    },
  };

  function plain<T>(x: T): T {
    return JSON.parse(JSON.stringify(x)) as T;
  }

  it('parses a request fed in one chunk and keeps the leftover bytes', () => {
    const p = new HttpHeadParser('request');
    const out = p.push(Buffer.concat([bytes(RFC_REQUEST), FRAME]));
    assert.ok(out);
    assert.deepEqual(plain(out.head), expectedHead);
    assert.deepEqual(out.rest, FRAME);
    expectOk(validateUpgradeRequest(out.head as UpgradeRequestInfo));
  });

  it('parses a request fed one byte at a time', () => {
    const p = new HttpHeadParser('request');
    const all = Buffer.concat([bytes(RFC_REQUEST), FRAME]);
    const headLen = RFC_REQUEST.length;
    for (let i = 0; i < headLen - 1; i++) assert.equal(p.push(all.subarray(i, i + 1)), null, `byte ${i}`);
    // The last byte of the head arrives together with the frame.
    const out = p.push(all.subarray(headLen - 1));
    assert.ok(out);
    assert.deepEqual(plain(out.head), expectedHead);
    assert.deepEqual(out.rest, FRAME);
  });

  it('returns an empty rest when the head ends the chunk', () => {
    const bytesIn = bytes(RFC_REQUEST);
    const p = new HttpHeadParser('request');
    for (let i = 0; i < bytesIn.length - 1; i++) assert.equal(p.push(bytesIn.subarray(i, i + 1)), null);
    const out = p.push(bytesIn.subarray(bytesIn.length - 1));
    assert.ok(out);
    assert.equal(out.rest.length, 0);
  });

  it('works on a plain Uint8Array view with an offset', () => {
    const all = Buffer.concat([Buffer.from('xx'), bytes(RFC_REQUEST), FRAME]);
    const view = new Uint8Array(all.buffer, all.byteOffset + 2, all.length - 2);
    const out = new HttpHeadParser('request').push(view);
    assert.ok(out);
    assert.deepEqual(out.rest, FRAME);
  });

  it('parses every split point of request + frame the same way', () => {
    const all = Buffer.concat([bytes(RFC_REQUEST), FRAME]);
    for (let cut = 0; cut <= all.length; cut++) {
      const p = new HttpHeadParser('request');
      let out = p.push(all.subarray(0, cut));
      let rest: Buffer = Buffer.alloc(0);
      if (out) rest = Buffer.concat([out.rest, all.subarray(cut)]);
      else {
        out = p.push(all.subarray(cut));
        assert.ok(out, `cut ${cut}`);
        rest = out.rest;
      }
      assert.deepEqual(plain(out.head), expectedHead, `cut ${cut}`);
      assert.deepEqual(rest, FRAME, `cut ${cut}`);
    }
  });

  it('parses a response, with repeated headers as arrays and trimmed values', () => {
    const p = new HttpHeadParser('response');
    const out = p.push(
      bytes(
        'HTTP/1.1 101 Switching Protocols\r\n' +
          'Upgrade: websocket\r\n' +
          'CONNECTION:Upgrade  \r\n' +
          'Sec-WebSocket-Accept: \t s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n' +
          'Sec-WebSocket-Extensions: a\r\n' +
          'sec-websocket-extensions: b\r\n' +
          'Sec-WebSocket-Extensions: c\r\n' +
          'X-Empty:\r\n' +
          '\r\n',
      ),
    );
    assert.ok(out);
    const head = out.head as ServerResponseInfo;
    assert.equal(head.status, 101);
    assert.equal(head.statusText, 'Switching Protocols');
    assert.equal(head.httpVersion, '1.1');
    assert.equal(head.headers['connection'], 'Upgrade');
    assert.equal(head.headers['sec-websocket-accept'], RFC_ACCEPT);
    assert.deepEqual(head.headers['sec-websocket-extensions'], ['a', 'b', 'c']);
    assert.equal(head.headers['x-empty'], '');
    assert.equal(out.rest.length, 0);
  });

  it('accepts a status line without a reason phrase', () => {
    const out = new HttpHeadParser('response').push(bytes('HTTP/1.1 101\r\n\r\n'));
    assert.ok(out);
    assert.equal((out.head as ServerResponseInfo).status, 101);
    assert.equal((out.head as ServerResponseInfo).statusText, '');
  });

  it('ignores empty lines before the request line (RFC 7230 3.5)', () => {
    const out = new HttpHeadParser('request').push(bytes('\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n'));
    assert.ok(out);
    assert.equal((out.head as UpgradeRequestInfo).url, '/');
  });

  it('is safe with header names that collide with Object.prototype', () => {
    const out = new HttpHeadParser('request').push(bytes('GET / HTTP/1.1\r\n__proto__: x\r\nconstructor: y\r\n\r\n'));
    assert.ok(out);
    const h = (out.head as UpgradeRequestInfo).headers;
    assert.equal(h['__proto__'], 'x');
    assert.equal(h['constructor'], 'y');
  });

  it('enforces maxHeaderBytes at the boundary (431)', () => {
    const head = bytes('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
    assert.ok(new HttpHeadParser('request', head.length).push(head));
    throwsHandshake(() => new HttpHeadParser('request', head.length - 1).push(head), 431, 'WS_ERR_HANDSHAKE_HEADERS_TOO_LARGE');
    // Byte at a time: fails on the first byte past the limit.
    const p = new HttpHeadParser('request', head.length - 1);
    for (let i = 0; i < head.length - 1; i++) assert.equal(p.push(head.subarray(i, i + 1)), null);
    throwsHandshake(() => p.push(head.subarray(head.length - 1)), 431, 'WS_ERR_HANDSHAKE_HEADERS_TOO_LARGE');
  });

  it('leftover bytes do not count against maxHeaderBytes', () => {
    const head = bytes('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
    const out = new HttpHeadParser('request', head.length).push(Buffer.concat([head, Buffer.alloc(100_000)]));
    assert.ok(out);
    assert.equal(out.rest.length, 100_000);
  });

  it('rejects an endless head with 431 under the default limit', () => {
    const p = new HttpHeadParser('request');
    assert.equal(p.maxHeaderBytes, 16384);
    assert.equal(p.push(bytes('GET / HTTP/1.1\r\n')), null);
    const filler = bytes('X-Filler: ' + 'a'.repeat(990) + '\r\n');
    assert.throws(() => {
      for (let i = 0; i < 20; i++) p.push(filler);
    }, (err: unknown) => err instanceof HandshakeError && err.status === 431);
  });

  const garbage: Array<[string, string]> = [
    ['binary junk', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n'],
    ['bare LF line endings', 'GET / HTTP/1.1\nHost: h\n\n'],
    ['CR without LF', 'GET / HTTP/1.1\rHost: h\r\n\r\n'],
    ['empty head', '\r\n\r\n'],
    ['request line with too few parts', 'GET /\r\n\r\n'],
    ['request line with double space', 'GET  / HTTP/1.1\r\n\r\n'],
    ['bad HTTP version', 'GET / HTTP/11\r\n\r\n'],
    ['non-HTTP protocol', 'GET / FTP/1.1\r\n\r\n'],
    ['header without colon', 'GET / HTTP/1.1\r\nHost h\r\n\r\n'],
    ['empty header name', 'GET / HTTP/1.1\r\n: h\r\n\r\n'],
    ['space before colon', 'GET / HTTP/1.1\r\nHost : h\r\n\r\n'],
    ['obs-fold', 'GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n'],
    ['control character in value', 'GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n'],
  ];
  for (const [name, text] of garbage) {
    it(`rejects ${name} with 400`, () => {
      throwsHandshake(() => new HttpHeadParser('request').push(bytes(text)), 400, 'WS_ERR_HANDSHAKE_MALFORMED');
    });
  }

  it('rejects a bad status line with 400', () => {
    for (const line of ['HTTP/1.1 1010 X', 'HTTP/1.1 abc X', 'HTTP/1.1', 'GET / HTTP/1.1']) {
      throwsHandshake(() => new HttpHeadParser('response').push(bytes(`${line}\r\n\r\n`)), 400, 'WS_ERR_HANDSHAKE_MALFORMED');
    }
  });

  it('rejects a bare LF as soon as it arrives, before the head is complete', () => {
    const p = new HttpHeadParser('request');
    assert.equal(p.push(bytes('GET / HTTP/1.1')), null);
    throwsHandshake(() => p.push(bytes('\n')), 400, 'WS_ERR_HANDSHAKE_MALFORMED');
  });

  it('stays failed after an error and refuses input after completion', () => {
    const p = new HttpHeadParser('request');
    throwsHandshake(() => p.push(bytes('\n')), 400, 'WS_ERR_HANDSHAKE_MALFORMED');
    throwsHandshake(() => p.push(bytes('GET / HTTP/1.1\r\n\r\n')), 400, 'WS_ERR_HANDSHAKE_MALFORMED');

    const q = new HttpHeadParser('request');
    assert.ok(q.push(bytes('GET / HTTP/1.1\r\n\r\n')));
    throwsUsage(() => q.push(bytes('x')), 'WS_ERR_PARSER_DONE');
  });

  it('validates its options', () => {
    throwsUsage(() => new HttpHeadParser('request', 0));
    throwsUsage(() => new HttpHeadParser('request', 1.5));
    throwsUsage(() => new HttpHeadParser('other' as 'request'));
  });
});

describe('full handshake round trip', () => {
  it('client request -> server validation -> 101 -> client validation', () => {
    const key = generateClientKey();
    const wire = buildClientRequest({
      host: 'localhost:9000',
      path: '/ws?room=1',
      key,
      protocols: ['lifeline.v1', 'chat'],
      extensions: 'permessage-deflate; client_max_window_bits',
      origin: 'https://app.example',
    });
    const reqOut = new HttpHeadParser('request').push(bytes(wire));
    assert.ok(reqOut);
    const server = expectOk(
      validateUpgradeRequest(reqOut.head as UpgradeRequestInfo, {
        subprotocols: ['chat', 'lifeline.v1'],
        origin: ['https://app.example'],
        requireOrigin: true,
        extensions: [
          {
            name: 'permessage-deflate',
            accept: (offers) => ({ response: { name: 'permessage-deflate', params: [['client_max_window_bits', '15']] }, state: offers }),
          },
        ],
      }),
    );
    assert.equal(server.protocol, 'chat');
    const resWire = buildAcceptResponse(server.key, server.responseHeaders);
    const resOut = new HttpHeadParser('response').push(Buffer.concat([bytes(resWire), FRAME_SERVER]));
    assert.ok(resOut);
    assert.deepEqual(resOut.rest, FRAME_SERVER);
    const client = validateServerResponse(resOut.head as ServerResponseInfo, key, ['lifeline.v1', 'chat'], [
      { name: 'permessage-deflate', accept: (r) => r.params },
    ]);
    assert.equal(client.protocol, 'chat');
    assert.deepEqual(client.extensions.get('permessage-deflate'), [['client_max_window_bits', '15']]);
  });
});

// RFC 6455 5.7: a single-frame unmasked text message "Hello".
const FRAME_SERVER = Buffer.from('810548656c6c6f', 'hex');
