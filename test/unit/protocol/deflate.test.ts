/**
 * permessage-deflate (RFC 7692): negotiation matrix, codec round trips,
 * interop with plain zlib, decompression bombs, the concurrency limiter.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import fc from 'fast-check';
import {
  EXTENSION_NAME,
  DEFAULT_THRESHOLD,
  PerMessageDeflate,
  ZlibLimiter,
  clientAccept,
  clientOffer,
  serverAccept,
  sharedLimiter,
  validateDeflateOptions,
  type DeflateCallback,
  type DeflateOptions,
  type DeflateParams,
  type LimiterJob,
} from '../../../src/protocol/deflate.js';
import { formatExtensionHeader, parseExtensionHeader, type ExtensionOffer } from '../../../src/protocol/extensions.js';
import { HandshakeError, MessageTooBigError, ProtocolError, UsageError } from '../../../src/protocol/errors.js';

// ---------------------------------------------------------------------------
// helpers

const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const SYNC = { finishFlush: zlib.constants.Z_SYNC_FLUSH };

const DEFAULT_PARAMS: DeflateParams = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
};

type Op = (data: Buffer, fin: boolean, cb: DeflateCallback) => void;

function run(op: Op, data: Buffer, fin = true): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => op(data, fin, (err, out) => (err ? reject(err) : resolve(out))));
}
const compress = (c: PerMessageDeflate, d: Buffer, fin = true) => run(c.compress.bind(c), d, fin);
const decompress = (c: PerMessageDeflate, d: Buffer, fin = true) => run(c.decompress.bind(c), d, fin);

function pair(params: Partial<DeflateParams> = {}, opts: ConstructorParameters<typeof PerMessageDeflate>[2] = {}) {
  const p = { ...DEFAULT_PARAMS, ...params };
  return { server: new PerMessageDeflate('server', p, opts), client: new PerMessageDeflate('client', p, opts) };
}

async function send(from: PerMessageDeflate, to: PerMessageDeflate, msg: Buffer): Promise<{ wire: Buffer; got: Buffer }> {
  const wire = (await compress(from, msg))!;
  const got = (await decompress(to, wire))!;
  return { wire, got };
}

/** Compressible text with repeats at every distance up to the whole length. */
function text(bytes: number, seed = 1): Buffer {
  let x = seed;
  const rnd = () => ((x = (x * 1103515245 + 12345) & 0x7fffffff), x);
  const words = Array.from({ length: 300 }, () => {
    let w = '';
    const n = 3 + (rnd() % 9);
    for (let i = 0; i < n; i++) w += String.fromCharCode(97 + (rnd() % 26));
    return w;
  });
  const parts: string[] = [];
  let len = 0;
  while (len <= bytes) {
    const w = words[rnd() % words.length]!;
    parts.push(w);
    len += w.length + 1;
  }
  return Buffer.from(parts.join(' ')).subarray(0, bytes);
}

/** The rejection's error, for assertions. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected a rejection');
}

function offers(header: string): ExtensionOffer[] {
  return parseExtensionHeader(header);
}

function accept(header: string, opts: DeflateOptions = {}) {
  const r = serverAccept(offers(header), opts);
  return r && { header: formatExtensionHeader([r.response]), params: r.params };
}

function negotiationFails(response: string, opts: DeflateOptions = {}): void {
  assert.throws(
    () => clientAccept(offers(response)[0]!, opts),
    (err: unknown) => {
      assert.ok(err instanceof HandshakeError);
      assert.equal(err.code, 'WS_ERR_DEFLATE_NEGOTIATION');
      assert.equal(err.status, 0);
      return true;
    },
  );
}

// ---------------------------------------------------------------------------
// options

describe('validateDeflateOptions', () => {
  test('defaults', () => {
    assert.deepEqual(validateDeflateOptions({}), {
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
      serverMaxWindowBits: undefined,
      clientMaxWindowBits: undefined,
      threshold: 1024,
      concurrencyLimit: 10,
      level: -1,
      memLevel: 8,
    });
  });

  test('accepts the boundaries', () => {
    const o = validateDeflateOptions({ serverMaxWindowBits: 8, clientMaxWindowBits: 15, threshold: 0, concurrencyLimit: 1, level: 9, memLevel: 9 });
    assert.equal(o.serverMaxWindowBits, 8);
    assert.equal(o.clientMaxWindowBits, 15);
    assert.equal(validateDeflateOptions({ clientMaxWindowBits: true }).clientMaxWindowBits, true);
  });

  const bad: Array<[string, DeflateOptions]> = [
    ['serverMaxWindowBits 7', { serverMaxWindowBits: 7 }],
    ['serverMaxWindowBits 16', { serverMaxWindowBits: 16 }],
    ["serverMaxWindowBits 'abc'", { serverMaxWindowBits: 'abc' as unknown as number }],
    ['serverMaxWindowBits 9.5', { serverMaxWindowBits: 9.5 }],
    ['serverMaxWindowBits true', { serverMaxWindowBits: true as unknown as number }],
    ['clientMaxWindowBits 7', { clientMaxWindowBits: 7 }],
    ['clientMaxWindowBits 16', { clientMaxWindowBits: 16 }],
    ["clientMaxWindowBits 'abc'", { clientMaxWindowBits: 'abc' as unknown as number }],
    ['clientMaxWindowBits NaN', { clientMaxWindowBits: NaN }],
    ["serverNoContextTakeover 'yes'", { serverNoContextTakeover: 'yes' as unknown as boolean }],
    ['threshold -1', { threshold: -1 }],
    ['concurrencyLimit 0', { concurrencyLimit: 0 }],
    ['level 10', { level: 10 }],
    ['level -2', { level: -2 }],
    ['memLevel 0', { memLevel: 0 }],
  ];
  for (const [name, o] of bad) {
    test(`rejects ${name}`, () => {
      assert.throws(() => validateDeflateOptions(o), (e: unknown) => e instanceof UsageError && e.code === 'WS_ERR_INVALID_OPTION');
      // Every entry point validates.
      assert.throws(() => clientOffer(o), UsageError);
      assert.throws(() => serverAccept(offers(EXTENSION_NAME), o), UsageError);
    });
  }
});

// ---------------------------------------------------------------------------
// client offer

describe('clientOffer', () => {
  test('default offers client_max_window_bits without a value', () => {
    assert.equal(clientOffer({}), 'permessage-deflate; client_max_window_bits');
  });

  test('all four parameters', () => {
    assert.equal(
      clientOffer({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 12 }),
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12',
    );
    assert.equal(clientOffer({ clientMaxWindowBits: true, serverMaxWindowBits: 8 }), 'permessage-deflate; server_max_window_bits=8; client_max_window_bits');
  });

  test('codec-only options do not appear on the wire', () => {
    assert.equal(clientOffer({ threshold: 0, level: 1, memLevel: 9, concurrencyLimit: 3 }), 'permessage-deflate; client_max_window_bits');
  });
});

// ---------------------------------------------------------------------------
// server side of negotiation (RFC 7692 5, 7.1)

describe('serverAccept', () => {
  test('plain offer, default options: empty response, default params', () => {
    assert.deepEqual(accept('permessage-deflate'), { header: 'permessage-deflate', params: DEFAULT_PARAMS });
  });

  test('server_no_context_takeover: echoed when offered, imposed when configured', () => {
    assert.deepEqual(accept('permessage-deflate; server_no_context_takeover'), {
      header: 'permessage-deflate; server_no_context_takeover',
      params: { ...DEFAULT_PARAMS, serverNoContextTakeover: true },
    });
    assert.equal(accept('permessage-deflate', { serverNoContextTakeover: true })!.header, 'permessage-deflate; server_no_context_takeover');
    // Asked for by the client: we comply even if not configured.
    assert.equal(accept('permessage-deflate; server_no_context_takeover', { serverNoContextTakeover: false })!.params.serverNoContextTakeover, true);
  });

  test('client_no_context_takeover: echoed when offered, imposed when configured', () => {
    assert.deepEqual(accept('permessage-deflate; client_no_context_takeover'), {
      header: 'permessage-deflate; client_no_context_takeover',
      params: { ...DEFAULT_PARAMS, clientNoContextTakeover: true },
    });
    assert.deepEqual(accept('permessage-deflate', { clientNoContextTakeover: true }), {
      header: 'permessage-deflate; client_no_context_takeover',
      params: { ...DEFAULT_PARAMS, clientNoContextTakeover: true },
    });
  });

  test('server_max_window_bits: same or smaller than offered; may be sent unasked', () => {
    assert.equal(accept('permessage-deflate; server_max_window_bits=10')!.header, 'permessage-deflate; server_max_window_bits=10');
    assert.equal(accept('permessage-deflate; server_max_window_bits=12', { serverMaxWindowBits: 9 })!.header, 'permessage-deflate; server_max_window_bits=9');
    assert.equal(accept('permessage-deflate; server_max_window_bits=9', { serverMaxWindowBits: 12 })!.params.serverMaxWindowBits, 9);
    assert.equal(accept('permessage-deflate', { serverMaxWindowBits: 11 })!.header, 'permessage-deflate; server_max_window_bits=11');
    assert.equal(accept('permessage-deflate; server_max_window_bits=8')!.params.serverMaxWindowBits, 8);
    // RFC 7692 5.2: a quoted value is fine once unescaped.
    assert.equal(accept('permessage-deflate; server_max_window_bits="10"')!.params.serverMaxWindowBits, 10);
  });

  test('client_max_window_bits: only when offered, never above the offered value', () => {
    // Offered without a value, no cap configured: nothing to say.
    assert.deepEqual(accept('permessage-deflate; client_max_window_bits'), { header: 'permessage-deflate', params: DEFAULT_PARAMS });
    assert.equal(accept('permessage-deflate; client_max_window_bits', { clientMaxWindowBits: 10 })!.header, 'permessage-deflate; client_max_window_bits=10');
    // Offered with a value: echoed (the client promised it), or our smaller cap.
    assert.equal(accept('permessage-deflate; client_max_window_bits=12')!.header, 'permessage-deflate; client_max_window_bits=12');
    assert.equal(accept('permessage-deflate; client_max_window_bits=12', { clientMaxWindowBits: 9 })!.params.clientMaxWindowBits, 9);
    assert.equal(accept('permessage-deflate; client_max_window_bits=9', { clientMaxWindowBits: 12 })!.params.clientMaxWindowBits, 9);
    // `true` on the server means "no cap".
    assert.equal(accept('permessage-deflate', { clientMaxWindowBits: true })!.header, 'permessage-deflate');
    // RFC 7692 7.1.2.2: not offered -> MUST NOT answer it; a server that needs
    // the cap cannot accept that offer.
    assert.equal(accept('permessage-deflate', { clientMaxWindowBits: 10 }), null);
  });

  test('all four at once', () => {
    assert.deepEqual(
      accept('permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits; server_max_window_bits=14', {
        serverMaxWindowBits: 12,
        clientMaxWindowBits: 11,
      }),
      {
        header: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=11',
        params: { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 11 },
      },
    );
  });

  const declined = [
    'permessage-deflate; server_max_window_bits=7',
    'permessage-deflate; server_max_window_bits=16',
    'permessage-deflate; server_max_window_bits=abc',
    'permessage-deflate; server_max_window_bits=010',
    'permessage-deflate; server_max_window_bits=+9',
    'permessage-deflate; server_max_window_bits',
    'permessage-deflate; client_max_window_bits=7',
    'permessage-deflate; client_max_window_bits=16',
    'permessage-deflate; client_max_window_bits=abc',
    'permessage-deflate; server_no_context_takeover=1',
    'permessage-deflate; client_no_context_takeover=true',
    'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
    'permessage-deflate; client_max_window_bits; client_max_window_bits=10',
    'permessage-deflate; server_max_window_bits=10; server_max_window_bits=10',
    'permessage-deflate; unknown_param',
    'permessage-deflate; mux=1',
    'permessage-deflate; Server_No_Context_Takeover',
  ];
  for (const h of declined) {
    test(`declines ${JSON.stringify(h)}`, () => {
      assert.equal(accept(h), null);
    });
  }

  test('first acceptable offer wins; bad ones and other extensions are skipped', () => {
    const h = 'x-webkit-deflate-frame, permessage-deflate; foo=1, permessage-deflate; server_max_window_bits=20, permessage-deflate; client_max_window_bits=10, permessage-deflate';
    assert.deepEqual(accept(h), {
      header: 'permessage-deflate; client_max_window_bits=10',
      params: { ...DEFAULT_PARAMS, clientMaxWindowBits: 10 },
    });
    // Fallback because of our own configuration (client cap needs the parameter).
    assert.equal(
      accept('permessage-deflate; server_no_context_takeover, permessage-deflate; client_max_window_bits', { clientMaxWindowBits: 9 })!.header,
      'permessage-deflate; client_max_window_bits=9',
    );
    assert.equal(accept('x-foo, permessage-deflate; foo'), null);
    assert.equal(serverAccept([], {}), null);
  });

  test('extension name is matched case-insensitively', () => {
    assert.equal(accept('PerMessage-Deflate')!.header, 'permessage-deflate');
  });
});

// ---------------------------------------------------------------------------
// client side of negotiation (RFC 7692 7.1)

describe('clientAccept', () => {
  const ok = (response: string, opts: DeflateOptions = {}) => clientAccept(offers(response)[0]!, opts);

  test('plain response', () => {
    assert.deepEqual(ok('permessage-deflate'), DEFAULT_PARAMS);
  });

  test('unsolicited parameters the server may send', () => {
    // RFC 7692 7.1.1.1, 7.1.1.2, 7.1.2.1: allowed without being offered.
    assert.deepEqual(ok('permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9'), {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 9,
      clientMaxWindowBits: 15,
    });
    // client_max_window_bits is allowed because clientOffer() offers it by default.
    assert.equal(ok('permessage-deflate; client_max_window_bits=8').clientMaxWindowBits, 8);
  });

  test('requested parameters, honoured', () => {
    const opts: DeflateOptions = { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 12 };
    assert.deepEqual(ok('permessage-deflate; server_no_context_takeover; server_max_window_bits=9; client_max_window_bits=11', opts), {
      serverNoContextTakeover: true,
      // We announced it: we honour it even though the server did not repeat it.
      clientNoContextTakeover: true,
      serverMaxWindowBits: 9,
      clientMaxWindowBits: 11,
    });
    // Server silent on client_max_window_bits: we keep our promise of 12.
    assert.equal(ok('permessage-deflate; server_no_context_takeover; server_max_window_bits=10', opts).clientMaxWindowBits, 12);
  });

  const failing: Array<[string, string, DeflateOptions]> = [
    ['wrong extension', 'x-foo', {}],
    ['unknown parameter', 'permessage-deflate; foo', {}],
    ['repeated parameter', 'permessage-deflate; server_no_context_takeover; server_no_context_takeover', {}],
    ['server_max_window_bits=7', 'permessage-deflate; server_max_window_bits=7', {}],
    ['server_max_window_bits=16', 'permessage-deflate; server_max_window_bits=16', {}],
    ['server_max_window_bits=abc', 'permessage-deflate; server_max_window_bits=abc', {}],
    ['server_max_window_bits without value', 'permessage-deflate; server_max_window_bits', {}],
    ['client_max_window_bits without value', 'permessage-deflate; client_max_window_bits', {}],
    ['client_max_window_bits=16', 'permessage-deflate; client_max_window_bits=16', {}],
    ['server_no_context_takeover with value', 'permessage-deflate; server_no_context_takeover=1', {}],
    ['server_max_window_bits above offered', 'permessage-deflate; server_max_window_bits=11', { serverMaxWindowBits: 10 }],
    ['server_max_window_bits requested, not answered', 'permessage-deflate', { serverMaxWindowBits: 10 }],
    ['server_no_context_takeover requested, not answered', 'permessage-deflate', { serverNoContextTakeover: true }],
    ['client_max_window_bits above offered', 'permessage-deflate; client_max_window_bits=13', { clientMaxWindowBits: 12 }],
  ];
  for (const [name, response, opts] of failing) {
    test(`fails: ${name}`, () => negotiationFails(response, opts));
  }

  test('rejects bad options as UsageError, not as a negotiation failure', () => {
    assert.throws(() => ok('permessage-deflate', { serverMaxWindowBits: 16 }), UsageError);
  });
});

// ---------------------------------------------------------------------------
// the whole negotiation, both sides

const optionsArb = fc.record(
  {
    serverNoContextTakeover: fc.boolean(),
    clientNoContextTakeover: fc.boolean(),
    serverMaxWindowBits: fc.integer({ min: 8, max: 15 }),
    clientMaxWindowBits: fc.oneof(fc.integer({ min: 8, max: 15 }), fc.constant(true as const)),
  },
  { requiredKeys: [] },
);

test('negotiation: whatever the server accepts, the client agrees to, with identical params', () => {
  fc.assert(
    fc.property(optionsArb, optionsArb, (clientOpts, serverOpts) => {
      const header = clientOffer(clientOpts);
      const accepted = serverAccept(parseExtensionHeader(header), serverOpts);
      if (accepted === null) return; // declined: the connection goes on uncompressed
      const response = parseExtensionHeader(formatExtensionHeader([accepted.response]));
      assert.equal(response.length, 1);
      const clientParams = clientAccept(response[0]!, clientOpts);
      // The client may be stricter with itself (client_no_context_takeover it
      // announced); that only changes its own compressor, never the server's
      // ability to inflate. Everything else must match exactly.
      assert.deepEqual({ ...clientParams, clientNoContextTakeover: accepted.params.clientNoContextTakeover }, accepted.params);
      if (accepted.params.clientNoContextTakeover) assert.equal(clientParams.clientNoContextTakeover, true);
      // What was asked for is respected.
      if (clientOpts.serverMaxWindowBits !== undefined) assert.ok(accepted.params.serverMaxWindowBits <= clientOpts.serverMaxWindowBits);
      if (serverOpts.serverMaxWindowBits !== undefined) assert.ok(accepted.params.serverMaxWindowBits <= serverOpts.serverMaxWindowBits);
      if (typeof serverOpts.clientMaxWindowBits === 'number') assert.ok(clientParams.clientMaxWindowBits <= serverOpts.clientMaxWindowBits);
      if (clientOpts.serverNoContextTakeover || serverOpts.serverNoContextTakeover) assert.equal(accepted.params.serverNoContextTakeover, true);
    }),
    { numRuns: 500 },
  );
});

test('negotiation: the client offer is only declined when the server needs a client window cap', () => {
  fc.assert(
    fc.property(optionsArb, optionsArb, (clientOpts, serverOpts) => {
      const accepted = serverAccept(parseExtensionHeader(clientOffer(clientOpts)), serverOpts);
      // clientOffer always offers client_max_window_bits, so nothing is declined.
      assert.notEqual(accepted, null);
    }),
    { numRuns: 200 },
  );
});

// ---------------------------------------------------------------------------
// codec: round trips

describe('PerMessageDeflate round trips', () => {
  test('small message, both directions', async () => {
    const { server, client } = pair();
    const msg = Buffer.from('Hello, Hello, Hello, permessage-deflate!');
    const a = await send(server, client, msg);
    assert.deepEqual(a.got, msg);
    assert.ok(a.wire.length < msg.length);
    const b = await send(client, server, msg);
    assert.deepEqual(b.got, msg);
    server.close();
    client.close();
  });

  test('RFC 7692 7.2.3.1: "Hello" compresses to the documented bytes', async () => {
    const { server, client } = pair();
    const wire = (await compress(server, Buffer.from('Hello')))!;
    assert.equal(wire.toString('hex'), 'f248cdc9c90700');
    assert.equal((await decompress(client, Buffer.from('f248cdc9c90700', 'hex')))!.toString(), 'Hello');
    server.close();
    client.close();
  });

  test('RFC 7692 7.2.3.2: context takeover shrinks the second "Hello"', async () => {
    const { server, client } = pair();
    await send(server, client, Buffer.from('Hello'));
    const { wire, got } = await send(server, client, Buffer.from('Hello'));
    assert.equal(wire.toString('hex'), 'f200110000');
    assert.equal(got.toString(), 'Hello');
    server.close();
    client.close();
  });

  test('RFC 7692 7.2.3.6: empty message is a single 0x00, also between other messages', async () => {
    const { server, client } = pair();
    const empty = await send(server, client, Buffer.alloc(0));
    assert.deepEqual(empty.wire, Buffer.from([0x00]));
    assert.equal(empty.got.length, 0);
    await send(server, client, Buffer.from('abcabcabc'));
    const again = await send(server, client, Buffer.alloc(0));
    assert.deepEqual(again.wire, Buffer.from([0x00]));
    assert.equal(again.got.length, 0);
    // A peer that sends an empty payload with RSV1: an empty message, state intact.
    assert.equal((await decompress(client, Buffer.alloc(0)))!.length, 0);
    assert.equal((await send(server, client, Buffer.from('abcabcabc'))).got.toString(), 'abcabcabc');
    server.close();
    client.close();
  });

  test('1 MiB random and 1 MiB compressible', async () => {
    const { server, client } = pair({}, { maxPayload: 2 * 1024 * 1024 });
    const random = randomBytes(1024 * 1024);
    const r = await send(server, client, random);
    assert.ok(r.got.equals(random));
    const compressible = text(1024 * 1024);
    const c = await send(client, server, compressible);
    assert.ok(c.got.equals(compressible));
    assert.ok(c.wire.length < compressible.length / 2, `ratio ${c.wire.length}`);
    server.close();
    client.close();
  });

  test('many messages with context takeover: repeats get cheap', async () => {
    const { server, client } = pair();
    const msg = text(2000, 7);
    const sizes: number[] = [];
    for (let i = 0; i < 50; i++) {
      const { wire, got } = await send(server, client, msg);
      assert.ok(got.equals(msg));
      sizes.push(wire.length);
    }
    assert.ok(sizes[1]! < sizes[0]! / 10, `${sizes[0]} then ${sizes[1]}`);
    server.close();
    client.close();
  });

  test('many messages without context takeover: every message stands alone', async () => {
    const { server, client } = pair({ serverNoContextTakeover: true, clientNoContextTakeover: true });
    const msg = text(2000, 7);
    const wires: Buffer[] = [];
    for (let i = 0; i < 50; i++) {
      const { wire, got } = await send(i % 2 ? client : server, i % 2 ? server : client, msg);
      assert.ok(got.equals(msg));
      wires.push(wire);
      // Decodable by a fresh inflater: no reference to earlier messages.
      assert.ok(zlib.inflateRawSync(Buffer.concat([wire, TRAILER]), SYNC).equals(msg));
    }
    for (const w of wires) assert.ok(w.equals(wires[0]!));
    server.close();
    client.close();
  });

  test('receiver without context takeover decodes a sender that starts fresh each message', async () => {
    const { client } = pair({ serverNoContextTakeover: true });
    for (let i = 0; i < 5; i++) {
      const msg = text(3000, i + 1);
      const wire = zlib.deflateRawSync(msg, SYNC).subarray(0, -4);
      assert.ok((await decompress(client, wire))!.equals(msg));
    }
    client.close();
  });

  // Each window size, with the server's and the client's different.
  for (let sb = 8; sb <= 15; sb++) {
    const cb = 23 - sb;
    test(`window bits: server ${sb}, client ${cb}`, async () => {
      const { server, client } = pair({ serverMaxWindowBits: sb, clientMaxWindowBits: cb });
      for (let i = 0; i < 3; i++) {
        const msg = text(40_000, sb * 10 + i);
        const s2c = await send(server, client, msg);
        assert.ok(s2c.got.equals(msg));
        const c2s = await send(client, server, msg);
        assert.ok(c2s.got.equals(msg));
        // The sender really stays within the window the receiver allocated:
        // zlib inflating with exactly that window would fail with "invalid
        // distance too far back" otherwise. (For 8, our compressor runs zlib
        // with 9, whose matches never reach past 250 bytes.)
        const onlyThis = pair({ serverMaxWindowBits: sb, clientMaxWindowBits: cb, serverNoContextTakeover: true, clientNoContextTakeover: true });
        const ws = (await compress(onlyThis.server, msg))!;
        const wc = (await compress(onlyThis.client, msg))!;
        assert.ok(zlib.inflateRawSync(Buffer.concat([ws, TRAILER]), { ...SYNC, windowBits: sb }).equals(msg));
        assert.ok(zlib.inflateRawSync(Buffer.concat([wc, TRAILER]), { ...SYNC, windowBits: cb }).equals(msg));
        onlyThis.server.close();
        onlyThis.client.close();
      }
      server.close();
      client.close();
    });
  }

  test('streamed message: fragments compressed with fin=false, then fin=true', async () => {
    const { server, client } = pair();
    const parts = [text(5000, 1), Buffer.alloc(0), text(7000, 2), text(10, 3)];
    const wires: Buffer[] = [];
    for (let i = 0; i < parts.length; i++) wires.push((await compress(server, parts[i]!, i === parts.length - 1))!);
    for (let i = 0; i < wires.length - 1; i++) {
      assert.equal(await decompress(client, wires[i]!, false), undefined);
    }
    const got = (await decompress(client, wires.at(-1)!, true))!;
    assert.ok(got.equals(Buffer.concat(parts)));
    // An empty last fragment is still well-formed (0x00).
    const a = (await compress(server, text(100, 4), false))!;
    const b = (await compress(server, Buffer.alloc(0), true))!;
    assert.deepEqual(b, Buffer.from([0x00]));
    await decompress(client, a, false);
    assert.ok((await decompress(client, b, true))!.equals(text(100, 4)));
    server.close();
    client.close();
  });

  test('one compressed payload split into frames of any size (even < 4 bytes)', async () => {
    const { server, client } = pair();
    for (const size of [1, 3, 4, 5, 1000]) {
      const msg = text(20_000, size);
      const wire = (await compress(server, msg))!;
      let got: Buffer | undefined;
      for (let off = 0; off < wire.length; off += size) {
        const end = Math.min(wire.length, off + size);
        got = await decompress(client, wire.subarray(off, end), end === wire.length);
      }
      assert.ok(got!.equals(msg));
    }
    server.close();
    client.close();
  });

  test('callbacks fire in call order', async () => {
    const { server, client } = pair();
    const msgs = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? randomBytes(50_000) : text(10 + i * 97, i)));
    const order: number[] = [];
    const wires = await Promise.all(
      msgs.map(
        (m, i) =>
          new Promise<Buffer>((resolve, reject) =>
            server.compress(m, true, (err, out) => {
              order.push(i);
              if (err) reject(err);
              else resolve(out!);
            }),
          ),
      ),
    );
    assert.deepEqual(order, msgs.map((_, i) => i));
    const dorder: number[] = [];
    const got = await Promise.all(
      wires.map(
        (w, i) =>
          new Promise<Buffer>((resolve, reject) =>
            client.decompress(w, true, (err, out) => {
              dorder.push(i);
              if (err) reject(err);
              else resolve(out!);
            }),
          ),
      ),
    );
    assert.deepEqual(dorder, order);
    got.forEach((g, i) => assert.ok(g.equals(msgs[i]!)));
    server.close();
    client.close();
  });

  test('property: random message sequences and parameters round-trip', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          serverNoContextTakeover: fc.boolean(),
          clientNoContextTakeover: fc.boolean(),
          serverMaxWindowBits: fc.integer({ min: 8, max: 15 }),
          clientMaxWindowBits: fc.integer({ min: 8, max: 15 }),
        }),
        fc.array(fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a.map((b) => 97 + (b % 4)))), { maxLength: 12 }),
        async (params, msgs) => {
          const { server, client } = pair(params);
          try {
            for (const m of msgs) {
              assert.ok((await send(server, client, m)).got.equals(m));
              assert.ok((await send(client, server, m)).got.equals(m));
            }
          } finally {
            server.close();
            client.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

// ---------------------------------------------------------------------------
// interop with plain zlib

describe('interop with node:zlib', () => {
  test('zlib.inflateRawSync(payload + 00 00 ff ff) decodes our output', async () => {
    const { server } = pair({ serverNoContextTakeover: true });
    for (const msg of [Buffer.from('x'), text(100_000), randomBytes(70_000)]) {
      const wire = (await compress(server, msg))!;
      assert.ok(zlib.inflateRawSync(Buffer.concat([wire, TRAILER]), SYNC).equals(msg));
    }
    server.close();
  });

  test('with context takeover our messages form one continuous deflate stream', async () => {
    const { server } = pair();
    const msgs = [text(3000, 1), text(3000, 1), text(500, 2)];
    const stream: Buffer[] = [];
    for (const m of msgs) stream.push((await compress(server, m))!, TRAILER);
    assert.ok(zlib.inflateRawSync(Buffer.concat(stream), SYNC).equals(Buffer.concat(msgs)));
    server.close();
  });

  test('decodes a sender that ends messages with a BFINAL block (RFC 7692 7.2.3.4)', async () => {
    const { client } = pair();
    const m1 = text(5000, 1);
    const m2 = Buffer.concat([m1.subarray(100, 2000), text(300, 9)]);
    assert.ok((await decompress(client, zlib.deflateRawSync(m1)))!.equals(m1));
    // With context takeover the next message may refer back to the previous one.
    const w2 = zlib.deflateRawSync(m2, { dictionary: m1 });
    assert.ok(w2.length < zlib.deflateRawSync(m2).length);
    assert.ok((await decompress(client, w2))!.equals(m2));
    // And an ordinary message after that.
    const w3 = zlib.deflateRawSync(m1, SYNC).subarray(0, -4);
    assert.ok((await decompress(client, w3))!.equals(m1));
    client.close();
  });
});

// ---------------------------------------------------------------------------
// failures and limits

describe('limits and bad input', () => {
  test('decompression bomb: 100 MiB of zeros stops at maxPayload with 1009', async () => {
    const zeros = Buffer.alloc(100 * 1024 * 1024);
    const bomb = zlib.deflateRawSync(zeros, SYNC).subarray(0, -4);
    assert.ok(bomb.length < 200 * 1024, `bomb is ${bomb.length} bytes`);
    const { server } = pair({}, { maxPayload: 1024 * 1024 });
    (globalThis as { gc?: () => void }).gc?.();
    const before = process.memoryUsage().rss;
    const err = await rejection(decompress(server, bomb));
    const growth = process.memoryUsage().rss - before;
    assert.ok(err instanceof MessageTooBigError, String(err));
    assert.equal(err.code, 'WS_ERR_MESSAGE_TOO_BIG');
    assert.equal(err.closeCode, 1009);
    assert.ok(growth < 32 * 1024 * 1024, `rss grew by ${(growth / 1048576).toFixed(1)} MiB`);
    // The decompress side is unusable afterwards; compress still works.
    const again = await rejection(decompress(server, Buffer.from([0x00])));
    assert.equal(again, err);
    assert.ok((await compress(server, Buffer.from('still fine'))) instanceof Buffer);
    server.close();
  });

  test('maxPayload boundary: exactly maxPayload passes, one more byte fails', async () => {
    const limit = 100_000;
    const { server, client } = pair({}, { maxPayload: limit });
    const exact = text(limit, 3);
    assert.ok((await send(server, client, exact)).got.equals(exact));
    const over = text(limit + 1, 3);
    assert.equal(over.length, limit + 1);
    const wire = (await compress(server, over))!;
    const err = await rejection(decompress(client, wire));
    assert.ok(err instanceof MessageTooBigError);
    server.close();
    client.close();
  });

  test('maxPayload counts the whole message across fragments', async () => {
    const { server, client } = pair({}, { maxPayload: 10_000 });
    const a = (await compress(server, text(6000, 1), false))!;
    const b = (await compress(server, text(6000, 2), true))!;
    assert.equal(await decompress(client, a, false), undefined);
    const err = await rejection(decompress(client, b, true));
    assert.equal((err as MessageTooBigError).closeCode, 1009);
    server.close();
    client.close();
  });

  test('maxPayload 0 means unlimited', async () => {
    const { server, client } = pair({}, { maxPayload: 0 });
    const big = text(3 * 1024 * 1024);
    assert.ok((await send(server, client, big)).got.equals(big));
    server.close();
    client.close();
  });

  test('invalid compressed data fails with 1007, and later calls get the same error', async () => {
    const { client } = pair();
    const pending = [decompress(client, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x01])), decompress(client, Buffer.from([0x00]))];
    const [e1, e2] = await Promise.all(pending.map(rejection));
    assert.ok(e1 instanceof ProtocolError);
    assert.equal(e1.code, 'WS_ERR_INVALID_COMPRESSED_DATA');
    assert.equal(e1.closeCode, 1007);
    assert.equal(e2, e1);
    client.close();
  });

  test('data after a final deflate block is an error (1007)', async () => {
    const { client } = pair();
    const wire = Buffer.concat([zlib.deflateRawSync(Buffer.from('done')), Buffer.from('trailing junk')]);
    const err = await rejection(decompress(client, wire));
    assert.equal((err as ProtocolError).closeCode, 1007);
    client.close();
  });

  test('close(): pending callbacks get WS_ERR_DEFLATE_CLOSED in order; idempotent; slots released', async () => {
    const limiter = new ZlibLimiter(2);
    const { server, client } = pair({}, { limiter });
    const wire = (await compress(server, text(1000)))!;
    const results: string[] = [];
    const note = (name: string) => (err: Error | null) => results.push(`${name}:${err ? (err as UsageError).code : 'ok'}`);
    server.compress(randomBytes(200_000), true, note('c1'));
    server.compress(randomBytes(1000), true, note('c2'));
    server.decompress(wire, true, note('d1'));
    server.close();
    server.close();
    server.compress(Buffer.from('late'), true, note('c3'));
    assert.deepEqual(results, [], 'no callback runs inside close()');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(results, [
      'c1:WS_ERR_DEFLATE_CLOSED',
      'c2:WS_ERR_DEFLATE_CLOSED',
      'd1:WS_ERR_DEFLATE_CLOSED',
      'c3:WS_ERR_DEFLATE_CLOSED',
    ]);
    assert.equal(limiter.active, 0);
    assert.equal(limiter.pending, 0);
    // The other codec sharing the limiter still works.
    assert.equal((await send(client, client, Buffer.from('ok'))).got.toString(), 'ok');
    client.close();
  });

  test('constructor validates params and options', () => {
    assert.throws(() => new PerMessageDeflate('server', { ...DEFAULT_PARAMS, serverMaxWindowBits: 7 }, {}), UsageError);
    assert.throws(() => new PerMessageDeflate('client', { ...DEFAULT_PARAMS, clientMaxWindowBits: 16 }, {}), UsageError);
    assert.throws(() => new PerMessageDeflate('peer' as 'server', DEFAULT_PARAMS, {}), UsageError);
    assert.throws(() => new PerMessageDeflate('server', DEFAULT_PARAMS, { maxPayload: -1 }), UsageError);
    assert.throws(() => new PerMessageDeflate('server', DEFAULT_PARAMS, { threshold: -1 }), UsageError);
    assert.throws(() => new PerMessageDeflate('server', DEFAULT_PARAMS, { level: 11 }), UsageError);
  });

  test('threshold: default 1024, shouldCompress at the boundary', () => {
    const d = new PerMessageDeflate('server', DEFAULT_PARAMS);
    assert.equal(d.threshold, DEFAULT_THRESHOLD);
    assert.equal(d.threshold, 1024);
    assert.equal(d.shouldCompress(1023), false);
    assert.equal(d.shouldCompress(1024), true);
    assert.equal(new PerMessageDeflate('server', DEFAULT_PARAMS, { threshold: 0 }).shouldCompress(0), true);
    d.close();
  });
});

// ---------------------------------------------------------------------------
// concurrency limiter

describe('ZlibLimiter', () => {
  test('FIFO, never more than the limit in flight, synchronous release is fine', () => {
    const l = new ZlibLimiter(2);
    const started: number[] = [];
    const jobs: LimiterJob[] = Array.from({ length: 6 }, (_, i) => ({ start: () => started.push(i) }));
    const sync: LimiterJob = { start: () => { started.push(99); l.release(); } };
    for (const j of jobs.slice(0, 3)) l.submit(j);
    l.submit(sync);
    for (const j of jobs.slice(3)) l.submit(j);
    assert.deepEqual(started, [0, 1]);
    assert.equal(l.active, 2);
    assert.equal(l.pending, 5);
    l.release();
    assert.deepEqual(started, [0, 1, 2]);
    l.release(); // 99 runs and releases at once, so 3 starts too
    assert.deepEqual(started, [0, 1, 2, 99, 3]);
    l.release();
    l.release();
    l.release();
    l.release();
    assert.deepEqual(started, [0, 1, 2, 99, 3, 4, 5]);
    assert.equal(l.active, 0);
    assert.throws(() => l.release());
    assert.throws(() => new ZlibLimiter(0), UsageError);
  });

  test('sharedLimiter is one instance per limit, process-wide', () => {
    assert.equal(sharedLimiter(), sharedLimiter(10));
    assert.equal(sharedLimiter(3), sharedLimiter(3));
    assert.notEqual(sharedLimiter(3), sharedLimiter(10));
    assert.equal(sharedLimiter(7).limit, 7);
  });

  test('many codecs share the limit: jobs in flight never exceed it', async () => {
    const limit = 3;
    const limiter = new ZlibLimiter(limit);
    const codecs = Array.from({ length: 40 }, () => new PerMessageDeflate('server', DEFAULT_PARAMS, { limiter }));
    // Count jobs in flight ourselves, by watching the limiter.
    let inFlight = 0;
    let peak = 0;
    const submit = limiter.submit.bind(limiter);
    const release = limiter.release.bind(limiter);
    limiter.submit = (job: LimiterJob) =>
      submit({
        start: () => {
          inFlight++;
          peak = Math.max(peak, inFlight);
          job.start();
        },
      });
    limiter.release = () => {
      inFlight--;
      release();
    };
    const payload = randomBytes(64 * 1024);
    const done = codecs.flatMap((c) => [compress(c, payload), compress(c, text(20_000))]);
    // Each codec serializes its own compress calls, so 40 lanes are waiting for 3 slots.
    assert.equal(limiter.active, limit);
    assert.equal(limiter.pending, codecs.length - limit);
    const outs = await Promise.all(done);
    assert.equal(outs.length, 80);
    assert.equal(peak, limit);
    assert.equal(inFlight, 0);
    assert.equal(limiter.active, 0);
    assert.equal(limiter.pending, 0);
    for (const c of codecs) c.close();
  });

  test('default codecs use the process-wide limiter of 10', async () => {
    const l = sharedLimiter(10);
    const codecs = Array.from({ length: 25 }, () => new PerMessageDeflate('client', DEFAULT_PARAMS));
    const done = codecs.map((c) => compress(c, randomBytes(32 * 1024)));
    assert.ok(l.active <= 10);
    assert.equal(l.active, 10);
    await Promise.all(done);
    assert.equal(l.active, 0);
    for (const c of codecs) c.close();
  });
});
