// lifeline.v1 on the wire (src/session/wire.ts, docs/PROTOCOL.md): golden
// vectors for every control message, classify() for every first byte, and the
// application-message header 'd' SEQ [',' ACK] ':' PAYLOAD (SEQ and ACK in
// ASCII decimal, no leading zeros, at most MAX_SEQ = 2^53 - 1). A control
// message is a text frame starting with '{' (a JSON object with "t"); an
// application message is any frame starting with 'd'; every other first byte
// is reserved.

import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import {
  CONTROL_MARK,
  DATA_MARK,
  DATA_PREFIX,
  MAX_SEQ,
  PROTOCOL_VERSION,
  SUBPROTOCOL,
  classify,
  dataHeaderLength,
  writeDataHeader,
  dataHeader,
  encodeControl,
  encodePing,
  encodePong,
  parseCanonicalAck,
  parseCanonicalPing,
  parseCanonicalPong,
  parseControl,
  parseDataHeaderBytes,
  parseDataHeaderString,
  type ControlMessage,
  type DataHeader,
} from '../../../src/session/wire.js';

const HB = { interval: 25_000, timeoutFloor: 5_000, timeoutCeiling: 15_000, timeoutInitial: 15_000, k: 4 };
const HB_TEXT = '{"interval":25000,"timeoutFloor":5000,"timeoutCeiling":15000,"timeoutInitial":15000,"k":4}';

/** Classifies a text message the way a receiver does. */
const classifyText = (s: string) => classify(s.length ? s.charCodeAt(0) : -1, true, () => s);
const neverCalled = (): string => {
  throw new Error('text() must not be called for this message');
};
const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const fresh = (): DataHeader => ({ seq: -7, ack: -7, offset: -7 });

describe('constants', () => {
  it('subprotocol name, version and marks', () => {
    assert.equal(SUBPROTOCOL, 'lifeline.v1');
    assert.equal(PROTOCOL_VERSION, 1);
    assert.equal(DATA_MARK, 0x64);
    assert.equal(DATA_PREFIX, 'd');
    assert.equal(DATA_PREFIX.charCodeAt(0), DATA_MARK);
    assert.equal(CONTROL_MARK, 0x7b);
    assert.equal('{'.charCodeAt(0), CONTROL_MARK);
    assert.equal(MAX_SEQ, 2 ** 53 - 1);
  });
});

describe('golden vectors: exact text of each control message', () => {
  // Member order is the order the client and server build them in (JSON.stringify keeps insertion order).
  const vectors: Array<[string, ControlMessage, string]> = [
    ['hello (first connect)', { t: 'hello', v: 1 }, '{"t":"hello","v":1}'],
    ['hello with auth', { t: 'hello', v: 1, auth: 'jwt.abc' }, '{"t":"hello","v":1,"auth":"jwt.abc"}'],
    [
      'hello resuming a session',
      { t: 'hello', v: 1, session: 's-1', token: 'rt-9', ack: 7 },
      '{"t":"hello","v":1,"session":"s-1","token":"rt-9","ack":7}',
    ],
    [
      'hello resuming with auth',
      { t: 'hello', v: 1, session: 's-1', token: 'rt-9', ack: 0, auth: 'jwt.abc' },
      '{"t":"hello","v":1,"session":"s-1","token":"rt-9","ack":0,"auth":"jwt.abc"}',
    ],
    ['welcome with heartbeat, no session (v0 shape)', { t: 'welcome', v: 1, hb: HB }, `{"t":"welcome","v":1,"hb":${HB_TEXT}}`],
    ['welcome without heartbeat, no session', { t: 'welcome', v: 1, hb: null }, '{"t":"welcome","v":1,"hb":null}'],
    [
      'welcome: new session',
      { t: 'welcome', v: 1, hb: HB, session: 's-1', token: 'rt-9', ack: 0, resumed: false, ttl: 120_000 },
      `{"t":"welcome","v":1,"hb":${HB_TEXT},"session":"s-1","token":"rt-9","ack":0,"resumed":false,"ttl":120000}`,
    ],
    [
      'welcome: resumed',
      { t: 'welcome', v: 1, hb: null, session: 's-1', token: 'rt-9', ack: 42, resumed: true, ttl: 120_000 },
      '{"t":"welcome","v":1,"hb":null,"session":"s-1","token":"rt-9","ack":42,"resumed":true,"ttl":120000}',
    ],
    [
      'welcome: session expired',
      {
        t: 'welcome',
        v: 1,
        hb: null,
        session: 's-2',
        token: 'rt-1',
        ack: 0,
        resumed: false,
        ttl: 120_000,
        lost: { reason: 'session-expired', toClient: 5, ack: 3 },
      },
      '{"t":"welcome","v":1,"hb":null,"session":"s-2","token":"rt-1","ack":0,"resumed":false,"ttl":120000,"lost":{"reason":"session-expired","toClient":5,"ack":3}}',
    ],
    [
      'welcome: replay overflow',
      { t: 'welcome', v: 1, hb: null, session: 's-2', token: 'rt-1', ack: 0, resumed: false, lost: { reason: 'replay-overflow', toClient: 1000, ack: 17 } },
      '{"t":"welcome","v":1,"hb":null,"session":"s-2","token":"rt-1","ack":0,"resumed":false,"lost":{"reason":"replay-overflow","toClient":1000,"ack":17}}',
    ],
    [
      'welcome: unknown session',
      { t: 'welcome', v: 1, hb: null, session: 's-2', token: 'rt-1', ack: 0, resumed: false, lost: { reason: 'unknown-session', toClient: null, ack: null } },
      '{"t":"welcome","v":1,"hb":null,"session":"s-2","token":"rt-1","ack":0,"resumed":false,"lost":{"reason":"unknown-session","toClient":null,"ack":null}}',
    ],
    ['ping', { t: 'ping', ts: 1_700_000_000_123 }, '{"t":"ping","ts":1700000000123}'],
    ['pong', { t: 'pong', ts: 1_700_000_000_123 }, '{"t":"pong","ts":1700000000123}'],
    ['ack', { t: 'ack', seq: 31 }, '{"t":"ack","seq":31}'],
    ['ack 0', { t: 'ack', seq: 0 }, '{"t":"ack","seq":0}'],
    ['ack MAX_SEQ', { t: 'ack', seq: MAX_SEQ }, '{"t":"ack","seq":9007199254740991}'],
    ['bye', { t: 'bye', reason: 'normal' }, '{"t":"bye","reason":"normal"}'],
    ['bye with retryAfter', { t: 'bye', reason: 'server-shutdown', retryAfter: 1234 }, '{"t":"bye","reason":"server-shutdown","retryAfter":1234}'],
    ['bye with retryAfter 0', { t: 'bye', reason: 'server-shutdown', retryAfter: 0 }, '{"t":"bye","reason":"server-shutdown","retryAfter":0}'],
    ['bye with a non-ASCII reason', { t: 'bye', reason: 'au revoir \u2014 "bye"' }, '{"t":"bye","reason":"au revoir \u2014 \\"bye\\""}'],
    ['auth', { t: 'auth', token: 'jwt.fresh' }, '{"t":"auth","token":"jwt.fresh"}'],
    ['auth-refresh', { t: 'auth-refresh' }, '{"t":"auth-refresh"}'],
    [
      'error, fatal',
      { t: 'error', code: 'auth-failed', message: 'authentication failed', fatal: true },
      '{"t":"error","code":"auth-failed","message":"authentication failed","fatal":true}',
    ],
    ['error, not fatal', { t: 'error', code: 'rate-limited', message: '', fatal: false }, '{"t":"error","code":"rate-limited","message":"","fatal":false}'],
  ];
  for (const [name, msg, text] of vectors) {
    it(`${name}: ${text}`, () => {
      assert.equal(encodeControl(msg), text);
      assert.deepEqual(parseControl(text), msg);
      assert.deepEqual(classifyText(text), { kind: 'control', msg });
    });
  }

  it('decoding does not depend on key order or whitespace', () => {
    assert.deepEqual(parseControl(' { "ts" : 5 , "t" : "ping" } '), { t: 'ping', ts: 5 });
    assert.deepEqual(
      parseControl('{"hb":{"k":4,"timeoutInitial":15000,"timeoutCeiling":15000,"timeoutFloor":5000,"interval":25000},"v":1,"t":"welcome"}'),
      { t: 'welcome', v: 1, hb: HB },
    );
    assert.deepEqual(parseControl('{"ack":3,"token":"k","session":"s","v":1,"t":"hello"}'), { t: 'hello', v: 1, session: 's', token: 'k', ack: 3 });
    assert.deepEqual(parseControl('{ "seq" : 9 , "t" : "ack" }'), { t: 'ack', seq: 9 });
  });

  it('a welcome without hb means no heartbeat', () => {
    assert.deepEqual(parseControl('{"t":"welcome","v":1}'), { t: 'welcome', v: 1, hb: null });
  });

  it('a welcome with a session and no resumed member means resumed: false', () => {
    assert.deepEqual(parseControl('{"t":"welcome","v":1,"hb":null,"session":"s","token":"k","ack":0}'), {
      t: 'welcome',
      v: 1,
      hb: null,
      session: 's',
      token: 'k',
      ack: 0,
      resumed: false,
    });
    // Only the JSON literal true counts.
    const r = parseControl('{"t":"welcome","v":1,"hb":null,"session":"s","token":"k","ack":0,"resumed":"yes"}');
    assert.equal(typeof r === 'object' && r.t === 'welcome' && r.resumed, false);
  });

  it('lost counts that are not sequence numbers decode as null (the server did not know)', () => {
    const r = parseControl('{"t":"welcome","v":1,"session":"s","token":"k","ack":0,"lost":{"reason":"unknown-session","toClient":-1,"ack":"3"}}');
    assert.deepEqual(r, { t: 'welcome', v: 1, hb: null, session: 's', token: 'k', ack: 0, resumed: false, lost: { reason: 'unknown-session', toClient: null, ack: null } });
  });

  it("error: message defaults to '' and fatal to false unless literally true", () => {
    assert.deepEqual(parseControl('{"t":"error","code":"x"}'), { t: 'error', code: 'x', message: '', fatal: false });
    assert.deepEqual(parseControl('{"t":"error","code":"x","message":5,"fatal":1}'), { t: 'error', code: 'x', message: '', fatal: false });
  });

  it('bye: a negative or non-numeric retryAfter is dropped, not an error', () => {
    assert.deepEqual(parseControl('{"t":"bye","reason":"r","retryAfter":-1}'), { t: 'bye', reason: 'r' });
    assert.deepEqual(parseControl('{"t":"bye","reason":"r","retryAfter":"10"}'), { t: 'bye', reason: 'r' });
    assert.deepEqual(parseControl('{"t":"bye","reason":"r","retryAfter":null}'), { t: 'bye', reason: 'r' });
  });
});

describe('docs/PROTOCOL.md golden vectors', () => {
  // The doc promises that this file checks its vectors: every control line
  // decodes and re-encodes to exactly the same text; every data line parses.
  const doc = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Golden vectors'));
  const block = /```\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const lines = block.split('\n').filter((l) => l.trim() !== '');

  it('the block exists and covers every control type', () => {
    assert.ok(lines.length > 0, 'golden vector block not found');
    const types = new Set(lines.filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { t: string }).t));
    for (const t of ['hello', 'welcome', 'ping', 'pong', 'ack', 'bye', 'auth', 'auth-refresh', 'error']) assert.ok(types.has(t), `no vector for ${t}`);
  });

  for (const line of lines) {
    if (line.startsWith('{')) {
      it(`control: ${line}`, () => {
        const msg = parseControl(line);
        assert.equal(typeof msg, 'object', String(msg));
        assert.equal(encodeControl(msg as ControlMessage), line);
      });
    } else if (line.startsWith('d')) {
      const text = line.split(/\s{2,}/)[0]!;
      it(`data (text): ${text}`, () => {
        const h = fresh();
        assert.equal(parseDataHeaderString(text, h), true);
        assert.match(line, new RegExp(`seq ${h.seq}\\b`), 'the comment names the seq');
      });
    } else if (/^[0-9a-f]{2}( [0-9a-f]{2})+\s/.test(line)) {
      const hex = line.split(/\s{2,}/)[0]!;
      it(`data (binary): ${hex}`, () => {
        const bytes = Uint8Array.from(hex.split(' '), (x) => parseInt(x, 16));
        const h = fresh();
        assert.equal(parseDataHeaderBytes(bytes, h), true);
        assert.match(line, new RegExp(`seq ${h.seq}\\b`));
      });
    }
  }
});

describe('unknown extra fields are ignored (forward compatibility)', () => {
  it('top-level and inside hb/lost; the decoded message carries only known fields', () => {
    assert.deepEqual(parseControl('{"t":"ping","ts":5,"x":1,"future":{"a":[1,2]}}'), { t: 'ping', ts: 5 });
    assert.deepEqual(parseControl('{"t":"hello","v":1,"caps":["zstd"]}'), { t: 'hello', v: 1 });
    assert.deepEqual(parseControl('{"t":"bye","reason":"r","code":4000}'), { t: 'bye', reason: 'r' });
    assert.deepEqual(parseControl('{"t":"ack","seq":4,"window":100}'), { t: 'ack', seq: 4 });
    assert.deepEqual(parseControl('{"t":"auth-refresh","expiresIn":30000}'), { t: 'auth-refresh' });
    assert.deepEqual(parseControl('{"t":"auth","token":"a","kind":"bearer"}'), { t: 'auth', token: 'a' });
    assert.deepEqual(
      parseControl(`{"t":"welcome","v":1,"hb":{"interval":25000,"timeoutFloor":5000,"timeoutCeiling":15000,"timeoutInitial":15000,"k":4,"jitter":0.1}}`),
      { t: 'welcome', v: 1, hb: HB },
    );
    assert.deepEqual(
      parseControl('{"t":"welcome","v":1,"session":"s","token":"k","ack":1,"lost":{"reason":"session-expired","toClient":2,"ack":1,"at":5}}'),
      { t: 'welcome', v: 1, hb: null, session: 's', token: 'k', ack: 1, resumed: false, lost: { reason: 'session-expired', toClient: 2, ack: 1 } },
    );
  });

  it('welcome members that need a session are ignored without one', () => {
    assert.deepEqual(parseControl('{"t":"welcome","v":1,"hb":null,"resumed":true,"ttl":5,"lost":{"reason":"nope"}}'), { t: 'welcome', v: 1, hb: null });
  });
});

describe('classify', () => {
  it("'d' + text: application message, text() not decoded", () => {
    assert.deepEqual(classify(DATA_MARK, true, neverCalled), { kind: 'data' });
  });

  it("'d' + binary: application message", () => {
    assert.deepEqual(classify(DATA_MARK, false, neverCalled), { kind: 'data' });
  });

  it("'m' (the old data mark) is reserved now", () => {
    assert.deepEqual(classify(0x6d, true, neverCalled), { kind: 'invalid', why: 'reserved message type 0x6d' });
    assert.deepEqual(classify(0x6d, false, neverCalled), { kind: 'invalid', why: 'reserved message type 0x6d' });
  });

  it("'{' + text: control message", () => {
    assert.deepEqual(classify(CONTROL_MARK, true, () => '{"t":"pong","ts":42}'), { kind: 'control', msg: { t: 'pong', ts: 42 } });
  });

  it("'{' in a binary frame is reserved, not control (and is not decoded)", () => {
    assert.deepEqual(classify(CONTROL_MARK, false, neverCalled), { kind: 'invalid', why: 'reserved message type 0x7b' });
  });

  it('an empty message is invalid', () => {
    assert.deepEqual(classify(-1, true, neverCalled), { kind: 'invalid', why: 'empty message' });
    assert.deepEqual(classify(-1, false, neverCalled), { kind: 'invalid', why: 'empty message' });
  });

  it('every other first byte is reserved, text or binary', () => {
    for (let b = 0; b < 256; b++) {
      if (b === DATA_MARK) continue;
      const hex = b.toString(16).padStart(2, '0');
      assert.deepEqual(classify(b, false, neverCalled), { kind: 'invalid', why: `reserved message type 0x${hex}` }, `binary 0x${hex}`);
      if (b === CONTROL_MARK) continue;
      assert.deepEqual(classify(b, true, neverCalled), { kind: 'invalid', why: `reserved message type 0x${hex}` }, `text 0x${hex}`);
    }
  });

  const invalidControl: Array<[string, string, string]> = [
    ['malformed JSON', '{"t":"ping",', 'control message is not valid JSON'],
    ['a lone brace', '{', 'control message is not valid JSON'],
    ['trailing garbage', '{"t":"ping","ts":1}x', 'control message is not valid JSON'],
    ['missing t', '{"ts":1}', 'unknown control type undefined'],
    ['unknown type', '{"t":"nack","seq":3}', 'unknown control type "nack"'],
    ['numeric t', '{"t":5}', 'unknown control type 5'],
    ['type in the wrong case', '{"t":"PING","ts":1}', 'unknown control type "PING"'],
    ['hello with a string v', '{"t":"hello","v":"1"}', 'hello without a numeric v'],
    ['hello without v', '{"t":"hello"}', 'hello without a numeric v'],
    ['hello with a session but no token', '{"t":"hello","v":1,"session":"s","ack":0}', 'hello with a session needs string session and token'],
    ['hello with a numeric session', '{"t":"hello","v":1,"session":5,"token":"k","ack":0}', 'hello with a session needs string session and token'],
    ['hello with a null session', '{"t":"hello","v":1,"session":null,"token":"k","ack":0}', 'hello with a session needs string session and token'],
    ['hello with a session but no ack', '{"t":"hello","v":1,"session":"s","token":"k"}', 'hello with a session needs a seq ack'],
    ['hello with a negative ack', '{"t":"hello","v":1,"session":"s","token":"k","ack":-1}', 'hello with a session needs a seq ack'],
    ['hello with a fractional ack', '{"t":"hello","v":1,"session":"s","token":"k","ack":1.5}', 'hello with a session needs a seq ack'],
    ['hello with an ack above MAX_SEQ', '{"t":"hello","v":1,"session":"s","token":"k","ack":9007199254740992}', 'hello with a session needs a seq ack'],
    ['hello with a numeric auth', '{"t":"hello","v":1,"auth":5}', 'hello with a non-string auth'],
    ['welcome without v', '{"t":"welcome","hb":null}', 'welcome without a numeric v'],
    ['welcome with a string hb field', '{"t":"welcome","v":1,"hb":{"interval":"25000","timeoutFloor":5000,"timeoutCeiling":15000,"timeoutInitial":15000,"k":4}}', 'welcome with a malformed hb'],
    ['welcome with hb missing k', '{"t":"welcome","v":1,"hb":{"interval":25000,"timeoutFloor":5000,"timeoutCeiling":15000,"timeoutInitial":15000}}', 'welcome with a malformed hb'],
    ['welcome with a numeric hb', '{"t":"welcome","v":1,"hb":5}', 'welcome with a malformed hb'],
    ['welcome with an array hb', '{"t":"welcome","v":1,"hb":[]}', 'welcome with a malformed hb'],
    ['welcome with a session but no token', '{"t":"welcome","v":1,"hb":null,"session":"s","ack":0}', 'welcome with a malformed session'],
    ['welcome with a session but no ack', '{"t":"welcome","v":1,"hb":null,"session":"s","token":"k"}', 'welcome with a malformed session'],
    ['welcome with a negative ack', '{"t":"welcome","v":1,"hb":null,"session":"s","token":"k","ack":-3}', 'welcome with a malformed session'],
    ['welcome with an unknown lost reason', '{"t":"welcome","v":1,"hb":null,"session":"s","token":"k","ack":0,"lost":{"reason":"gone"}}', 'welcome with a malformed lost'],
    ['welcome with a null lost', '{"t":"welcome","v":1,"hb":null,"session":"s","token":"k","ack":0,"lost":null}', 'welcome with a malformed lost'],
    ['welcome with a string lost', '{"t":"welcome","v":1,"hb":null,"session":"s","token":"k","ack":0,"lost":"session-expired"}', 'welcome with a malformed lost'],
    ['ping with a string ts', '{"t":"ping","ts":"5"}', 'ping without a numeric ts'],
    ['ping with a null ts', '{"t":"ping","ts":null}', 'ping without a numeric ts'],
    ['ping without ts', '{"t":"ping"}', 'ping without a numeric ts'],
    ['ping whose ts overflows to Infinity', '{"t":"ping","ts":1e400}', 'ping without a numeric ts'],
    ['pong with a boolean ts', '{"t":"pong","ts":true}', 'pong without a numeric ts'],
    ['ack without seq', '{"t":"ack"}', 'ack without a seq'],
    ['ack with a string seq', '{"t":"ack","seq":"3"}', 'ack without a seq'],
    ['ack with a negative seq', '{"t":"ack","seq":-1}', 'ack without a seq'],
    ['ack with a fractional seq', '{"t":"ack","seq":2.5}', 'ack without a seq'],
    ['ack above MAX_SEQ', '{"t":"ack","seq":9007199254740992}', 'ack without a seq'],
    ['bye with a numeric reason', '{"t":"bye","reason":5}', 'bye without a reason'],
    ['bye without reason', '{"t":"bye"}', 'bye without a reason'],
    ['auth without token', '{"t":"auth"}', 'auth without a token'],
    ['auth with a numeric token', '{"t":"auth","token":1}', 'auth without a token'],
    ['error without code', '{"t":"error","message":"m","fatal":true}', 'error without a code'],
    ['error with a numeric code', '{"t":"error","code":4401,"fatal":true}', 'error without a code'],
  ];
  for (const [name, text, why] of invalidControl) {
    it(`invalid control: ${name}`, () => {
      assert.deepEqual(classifyText(text), { kind: 'invalid', why });
    });
  }

  it('parseControl rejects JSON that is not an object', () => {
    for (const text of ['[1]', 'null', '5', '"ping"', 'true']) {
      assert.equal(parseControl(text), 'control message is not a JSON object', text);
    }
  });
});

describe("data header 'd' SEQ [',' ACK] ':'", () => {
  const valid: Array<[string, number, number, number]> = [
    // text, seq, ack, offset
    ['d1:x', 1, -1, 3],
    ['d1:', 1, -1, 3],
    ['d12,7:payload', 12, 7, 6],
    ['d12,0:payload', 12, 0, 6],
    ['d0:', 0, -1, 3],
    ['d1:d2:{"t":"ping"}', 1, -1, 3],
    ['d5,3::::', 5, 3, 5],
    [`d${MAX_SEQ}:z`, MAX_SEQ, -1, 18],
    [`d${MAX_SEQ},${MAX_SEQ}:z`, MAX_SEQ, MAX_SEQ, 35],
  ];
  for (const [text, seq, ack, offset] of valid) {
    it(`parses ${JSON.stringify(text)} -> seq ${seq}, ack ${ack}, payload at ${offset}`, () => {
      const a = fresh();
      assert.equal(parseDataHeaderString(text, a), true);
      assert.deepEqual(a, { seq, ack, offset });
      const b = fresh();
      assert.equal(parseDataHeaderBytes(ascii(text), b), true);
      assert.deepEqual(b, { seq, ack, offset });
    });
  }

  it("binary: 'd3:' followed by arbitrary bytes (including ':' and non-ASCII)", () => {
    const msg = new Uint8Array([0x64, 0x33, 0x3a, 0x00, 0xff, 0x3a, 0x80, 0x64]);
    const h = fresh();
    assert.equal(parseDataHeaderBytes(msg, h), true);
    assert.deepEqual(h, { seq: 3, ack: -1, offset: 3 });
    assert.deepEqual([...msg.subarray(h.offset)], [0x00, 0xff, 0x3a, 0x80, 0x64]);
  });

  it('a text payload may hold any characters, including astral ones; offset counts UTF-16 units of the header only', () => {
    const h = fresh();
    const text = 'd9,8:\u{1F600}\u00e9:\n';
    assert.equal(parseDataHeaderString(text, h), true);
    assert.deepEqual(h, { seq: 9, ack: 8, offset: 5 });
    assert.equal(text.slice(h.offset), '\u{1F600}\u00e9:\n');
  });

  const invalid: Array<[string, string]> = [
    ['', 'empty'],
    ['d', 'mark only'],
    ['d:', 'no seq digits'],
    ['d:x', 'no seq digits, with a payload'],
    ['d01:', 'a leading zero'],
    ['d00:', 'two zeros'],
    ['d1', 'no colon, too short'],
    ['d12', 'no colon, digits only'],
    ['d12x', 'no colon: a letter after the digits'],
    ['d12 :x', 'a space before the colon'],
    ['d+1:x', 'a sign'],
    ['d-1:x', 'a negative'],
    ['d1.5:x', 'a fraction'],
    ['d1e3:x', 'an exponent'],
    ['d1,:', 'an empty ack'],
    ['d1,:x', 'an empty ack, with a payload'],
    ['d1,', 'a comma at the end'],
    ['d1,2', 'an ack without a colon'],
    ['d1,02:x', 'a leading zero in the ack'],
    ['d1,2,3:x', 'two acks'],
    ['d,1:x', 'an ack without a seq'],
    ['dx:', 'a letter for the seq'],
    ['d\u0661:x', 'a non-ASCII digit (ARABIC-INDIC ONE)'],
    ['m1:x', "the old 'm' mark"],
    ['D1:x', 'an upper-case mark'],
    [' d1:x', 'leading space'],
    [`d${MAX_SEQ + 1}:x`, 'seq MAX_SEQ + 1'],
    ['d9007199254740993:x', 'seq MAX_SEQ + 2 (rounds in floating point)'],
    ['d99999999999999999999:x', 'seq far above MAX_SEQ'],
    [`d${'9'.repeat(400)}:x`, 'seq of 400 digits (Infinity)'],
    [`d1,${MAX_SEQ + 1}:x`, 'ack MAX_SEQ + 1'],
    [`d1,${'9'.repeat(400)}:x`, 'ack of 400 digits'],
  ];
  for (const [text, what] of invalid) {
    it(`rejects ${JSON.stringify(text.length > 40 ? text.slice(0, 30) + '...' : text)}: ${what}`, () => {
      assert.equal(parseDataHeaderString(text, fresh()), false);
      assert.equal(parseDataHeaderBytes(ascii(text), fresh()), false);
    });
  }

  it('rejects a binary message whose digits are followed by a non-ASCII byte', () => {
    assert.equal(parseDataHeaderBytes(new Uint8Array([0x64, 0x31, 0xba]), fresh()), false);
    assert.equal(parseDataHeaderBytes(new Uint8Array([0x64, 0x31, 0x2c, 0x32, 0xff, 0x3a]), fresh()), false);
  });

  it('writeDataHeader writes exactly the bytes of dataHeader(), ending where asked, in dataHeaderLength() bytes (0..MAX_SEQ, with and without an ack), and they parse back', () => {
    // Every digit count's first and last value: where the digit count changes.
    const edges = Array.from({ length: 16 }, (_, k) => [10 ** k, 10 ** (k + 1) - 1]).flat().filter((n) => n <= MAX_SEQ);
    const nat = fc.oneof(fc.integer({ min: 0, max: 1_000_000 }), fc.constantFrom(0, ...edges, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 9, MAX_SEQ), fc.integer({ min: 0, max: MAX_SEQ }));
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 1, max: MAX_SEQ }), nat.filter((n) => n > 0)), fc.oneof(fc.constant(-1), nat), (seq, ack) => {
        const text = dataHeader(seq, ack);
        const len = dataHeaderLength(seq, ack);
        assert.equal(len, text.length);
        const buf = Buffer.alloc(len + 2, 0xee);
        assert.equal(writeDataHeader(buf, 1 + len, seq, ack), 1, 'returns where the header starts');
        assert.equal(buf.subarray(1, 1 + len).toString('latin1'), text);
        assert.equal(buf[0], 0xee, 'nothing written before');
        assert.equal(buf[buf.length - 1], 0xee, 'nothing written after');
        const h = fresh();
        assert.equal(parseDataHeaderBytes(buf.subarray(1), h), true);
        assert.deepEqual([h.seq, h.ack, h.offset], [seq, ack, len]);
      }),
      { numRuns: 2000 },
    );
  });

  it('dataHeader encodes with and without an ack', () => {
    assert.equal(dataHeader(1, -1), 'd1:');
    assert.equal(dataHeader(12, 7), 'd12,7:');
    assert.equal(dataHeader(12, 0), 'd12,0:');
    assert.equal(dataHeader(MAX_SEQ, MAX_SEQ), `d${MAX_SEQ},${MAX_SEQ}:`);
  });

  it('the output object is reused, not replaced (no allocation per message)', () => {
    const h = fresh();
    assert.equal(parseDataHeaderString('d4,2:a', h), true);
    assert.equal(parseDataHeaderString('d5:b', h), true);
    assert.deepEqual(h, { seq: 5, ack: -1, offset: 3 }, 'the ack of the previous message does not leak');
  });
});

describe('properties', () => {
  const seqArb = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: MAX_SEQ }), fc.constant(MAX_SEQ));
  const ackArb = fc.oneof(fc.constant(-1), seqArb);

  it('data header: encode then parse gives back seq, ack and the payload; string and bytes parsers agree', () => {
    fc.assert(
      fc.property(seqArb, ackArb, fc.string({ unit: 'binary-ascii' }), fc.uint8Array({ maxLength: 64 }), (seq, ack, text, bytes) => {
        const head = dataHeader(seq, ack);
        const s = fresh();
        assert.equal(parseDataHeaderString(head + text, s), true);
        assert.deepEqual(s, { seq, ack, offset: head.length });
        assert.equal((head + text).slice(s.offset), text);
        // The same message as bytes: header in ASCII then arbitrary bytes.
        const framed = new Uint8Array(head.length + bytes.length);
        framed.set(ascii(head));
        framed.set(bytes, head.length);
        const b = fresh();
        assert.equal(parseDataHeaderBytes(framed, b), true);
        assert.deepEqual(b, s);
        assert.deepEqual([...framed.subarray(b.offset)], [...bytes]);
      }),
      { numRuns: 500 },
    );
  });

  it('parseDataHeaderString and parseDataHeaderBytes agree on any short ASCII input (valid or not)', () => {
    // An alphabet dense in the interesting characters, so many inputs are valid or nearly.
    const ch = fc.constantFrom('d', '0', '1', '2', '9', ',', ':', 'x', ' ');
    fc.assert(
      fc.property(fc.array(ch, { maxLength: 12 }).map((a) => a.join('')), (text) => {
        const s = fresh();
        const b = fresh();
        const rs = parseDataHeaderString(text, s);
        const rb = parseDataHeaderBytes(ascii(text), b);
        assert.equal(rs, rb, text);
        if (rs) assert.deepEqual(s, b, text);
        // And both agree with a reference regex.
        const m = /^d(0|[1-9]\d*)(?:,(0|[1-9]\d*))?:/.exec(text);
        assert.equal(rs, m !== null && Number(m[1]) <= MAX_SEQ && (m[2] === undefined || Number(m[2]) <= MAX_SEQ), text);
        if (m && rs) assert.deepEqual(s, { seq: Number(m[1]), ack: m[2] === undefined ? -1 : Number(m[2]), offset: m[0].length });
      }),
      { numRuns: 2000 },
    );
  });

  it('parseDataHeaderString reads any string as the reference grammar does: non-ASCII characters (even those whose low byte is a digit or a separator) and headers near and past the longest valid one', () => {
    // U+0130, U+0131, U+012C, U+013A, U+0164: low bytes '0', '1', ',', ':', 'd'.
    const ch = fc.constantFrom('d', '0', '1', '9', ',', ':', '\u0130', '\u0131', '\u012c', '\u013a', '\u0164', '\u{1F600}');
    const digits = (n: number) => fc.array(fc.constantFrom('1', '9'), { minLength: n, maxLength: n }).map((a) => a.join(''));
    const long = fc.tuple(digits(16), fc.oneof(fc.constant(''), digits(16).map((d) => ',' + d), digits(17).map((d) => ',' + d)), fc.constantFrom(':', ':x', '')).map(([a, b, c]) => `d${a}${b}${c}`);
    fc.assert(
      fc.property(fc.oneof(fc.array(ch, { maxLength: 12 }).map((a) => a.join('')), long), (text) => {
        const s = fresh();
        const rs = parseDataHeaderString(text, s);
        const m = /^d(0|[1-9]\d*)(?:,(0|[1-9]\d*))?:/.exec(text);
        assert.equal(rs, m !== null && Number(m[1]) <= MAX_SEQ && (m[2] === undefined || Number(m[2]) <= MAX_SEQ), text);
        if (m && rs) assert.deepEqual(s, { seq: Number(m[1]), ack: m[2] === undefined ? -1 : Number(m[2]), offset: m[0].length });
      }),
      { numRuns: 3000 },
    );
    assert.equal(parseDataHeaderString(`d${MAX_SEQ},${MAX_SEQ}:`, fresh()), true, 'the longest valid header');
  });

  it('ping/pong round-trip any finite timestamp', () => {
    fc.assert(
      fc.property(fc.constantFrom('ping' as const, 'pong' as const), fc.double({ noNaN: true, noDefaultInfinity: true }), (t, ts) => {
        const msg: ControlMessage = { t, ts };
        // JSON has no -0: it comes back as 0.
        assert.deepEqual(parseControl(encodeControl(msg)), { t, ts: Object.is(ts, -0) ? 0 : ts });
      }),
    );
  });

  it('ack round-trips any sequence number', () => {
    fc.assert(
      fc.property(seqArb, (seq) => {
        assert.deepEqual(parseControl(encodeControl({ t: 'ack', seq })), { t: 'ack', seq });
      }),
    );
  });

  it('hello round-trips any session, token, ack and auth', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), seqArb, fc.option(fc.string(), { nil: undefined }), (session, token, ack, auth) => {
        const msg: ControlMessage = { t: 'hello', v: 1, session, token, ack };
        if (auth !== undefined) msg.auth = auth;
        assert.deepEqual(parseControl(encodeControl(msg)), msg);
      }),
    );
  });

  it('bye round-trips any reason string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (reason) => {
        assert.deepEqual(parseControl(encodeControl({ t: 'bye', reason })), { t: 'bye', reason });
      }),
    );
  });

  it('classify never throws on any text and always yields one of the three kinds', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json().map((j) => `{${j}`), fc.json()), (s) => {
        const d = classifyText(s);
        assert.ok(d.kind === 'data' || d.kind === 'control' || d.kind === 'invalid');
        if (d.kind === 'control') assert.equal(s.charCodeAt(0), CONTROL_MARK);
        if (d.kind === 'data') assert.equal(s.charCodeAt(0), DATA_MARK);
      }),
      { numRuns: 500 },
    );
  });

  it('parseControl never throws on any JSON object with a known t', () => {
    const types = ['hello', 'welcome', 'ping', 'pong', 'ack', 'bye', 'auth', 'auth-refresh', 'error'];
    fc.assert(
      fc.property(fc.constantFrom(...types), fc.dictionary(fc.constantFrom('v', 'hb', 'session', 'token', 'ack', 'lost', 'seq', 'ts', 'reason', 'retryAfter', 'code', 'fatal', 'auth'), fc.jsonValue()), (t, rest) => {
        const r = parseControl(JSON.stringify({ ...rest, t }));
        assert.ok(typeof r === 'string' || r.t === t);
      }),
      { numRuns: 1000 },
    );
  });
});

// The fast paths for the control messages a session receives most: each
// reads exactly the form encodeControl() writes (whole numbers) and leaves
// everything else to parseControl(), so the answer for any input is the one
// parseControl() gives.
const CANONICAL = [
  { t: 'ack', field: 'seq', parse: parseCanonicalAck },
  { t: 'pong', field: 'ts', parse: parseCanonicalPong },
  { t: 'ping', field: 'ts', parse: parseCanonicalPing },
] as const;
const canonicalText = (t: string, field: string, n: number | string): string => `{"t":"${t}","${field}":${n}}`;

for (const { t, field, parse } of CANONICAL) {
  const other = t === 'ack' ? '{"t":"ping","ts":1}' : '{"t":"ack","seq":1}';
  describe(`parseCanonical${t[0]!.toUpperCase()}${t.slice(1)} (the ${t} fast path)`, () => {
    it(`reads back every ${t} encodeControl() writes`, () => {
      fc.assert(
        fc.property(fc.oneof(fc.integer({ min: 0, max: MAX_SEQ }), fc.constantFrom(0, 9, 10, 2 ** 31, MAX_SEQ)), (n) => {
          assert.equal(parse(Buffer.from(encodeControl({ t, [field]: n } as ControlMessage))), n);
        }),
        { numRuns: 1000 },
      );
    });

    for (const text of [
      canonicalText(t, field, '01'),
      canonicalText(t, field, ''),
      canonicalText(t, field, '1 '),
      canonicalText(t, field, '1,"x":2'),
      canonicalText(t, field, '-1'),
      canonicalText(t, field, '1.5'),
      canonicalText(t, field, '1e3'),
      canonicalText(t, field, MAX_SEQ + 1),
      `{"t":"${t}", "${field}":1}`,
      `{"${field}":1,"t":"${t}"}`,
      `{"t":"${t}","${field}":1`,
      other,
      '',
    ]) {
      it(`declines ${JSON.stringify(text)} (left to parseControl)`, () => {
        assert.equal(parse(Buffer.from(text)), -1);
      });
    }

    it(`never disagrees with parseControl: whatever it accepts, parseControl reads as the same ${t}`, () => {
      const piece = fc.constantFrom('{', '}', '"t"', ':', `"${t}"`, ',', `"${field}"`, '0', '1', '9', ' ', '-', '.', 'e');
      const near = fc.oneof(
        fc.array(piece, { maxLength: 14 }).map((a) => a.join('')),
        fc.tuple(fc.integer({ min: 0, max: MAX_SEQ }), fc.string({ maxLength: 3 })).map(([n, tail]) => `{"t":"${t}","${field}":${n}${tail}`),
      );
      fc.assert(
        fc.property(near, (text) => {
          const fast = parse(Buffer.from(text));
          if (fast >= 0) assert.deepEqual(parseControl(text), { t, [field]: fast });
        }),
        { numRuns: 3000 },
      );
    });
  });
}

describe('encodePing, encodePong (app heartbeat messages without JSON.stringify)', () => {
  for (const [t, encode] of [['ping', encodePing], ['pong', encodePong]] as const) {
    it(`${t}: writes what encodeControl() writes, for any number`, () => {
      fc.assert(
        fc.property(fc.oneof(fc.integer({ min: 0, max: MAX_SEQ }), fc.double(), fc.constantFrom(0, -0, 1e21, 1.5e-7, NaN, Infinity)), (ts) => {
          assert.equal(encode(ts), encodeControl({ t, ts }));
        }),
        { numRuns: 2000 },
      );
    });
  }
});

describe('ranges: a message inside a larger read (the server parses it where it arrived)', () => {
  /** `text` as bytes between `before` and `after` junk bytes; returns the buffer and the message's range. */
  const embed = (text: string, before: Uint8Array, after: Uint8Array) => {
    const msg = ascii(text);
    const buf = new Uint8Array(before.length + msg.length + after.length);
    buf.set(before);
    buf.set(msg, before.length);
    buf.set(after, before.length + msg.length);
    return { buf, start: before.length, end: before.length + msg.length };
  };
  // Junk that would change the verdict if read: digits, ':', ',', 'd', '}'.
  const junk = fc.uint8Array({ maxLength: 8 }).map((a) => a.map((b) => [0x31, 0x3a, 0x2c, 0x64, 0x7d, b][b % 6]!));

  it('parseDataHeaderBytes on a range gives what it gives on the message alone, offset counted from the buffer', () => {
    const message = fc.oneof(
      fc.tuple(fc.integer({ min: 0, max: MAX_SEQ }), fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 99 })), fc.string({ maxLength: 4 })).map(([seq, ack, p]) => dataHeader(seq, ack) + p),
      fc.array(fc.constantFrom('d', '1', '0', ',', ':', 'x'), { maxLength: 8 }).map((a) => a.join('')),
    );
    fc.assert(
      fc.property(message, junk, junk, (text, before, after) => {
        const { buf, start, end } = embed(text, before, after);
        const alone = fresh();
        const ok = parseDataHeaderBytes(ascii(text), alone);
        const ranged = fresh();
        assert.equal(parseDataHeaderBytes(buf, ranged, start, end), ok, text);
        if (ok) assert.deepEqual(ranged, { ...alone, offset: alone.offset + start });
      }),
      { numRuns: 2000 },
    );
  });

  for (const { t, field, parse } of CANONICAL) {
    it(`parseCanonical ${t} on a range gives what it gives on the message alone`, () => {
      const message = fc.oneof(
        fc.integer({ min: 0, max: MAX_SEQ }).map((n) => encodeControl({ t, [field]: n } as ControlMessage)),
        fc.tuple(fc.integer({ min: 0, max: 999 }), fc.constantFrom('', '}', '1', ' ')).map(([n, tail]) => `{"t":"${t}","${field}":${n}${tail}`),
      );
      fc.assert(
        fc.property(message, junk, junk, (text, before, after) => {
          const { buf, start, end } = embed(text, before, after);
          assert.equal(parse(buf, start, end), parse(ascii(text)), text);
        }),
        { numRuns: 2000 },
      );
    });
  }
});
