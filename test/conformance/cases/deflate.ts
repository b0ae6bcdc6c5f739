/**
 * 12.x / 13.x permessage-deflate (RFC 7692). The peer negotiates the
 * extension, sends compressed messages (node:zlib deflateRaw, Z_SYNC_FLUSH,
 * trailing 00 00 ff ff stripped), our side echoes them compressed (threshold
 * 0), and the peer inflates the echoes with exactly the negotiated window and
 * context takeover before comparing.
 *
 * 12.x: Autobahn's five kinds of data x its 18 (size, auto-fragment) pairs,
 * default offer. Our corpora are generated (same kinds: JSON, a bitmap,
 * human-readable German text, HTML, a PDF-like mix); message counts scale.
 * 13.x: parameter combinations. 13.1-13.7 follow Autobahn (its
 * "requestNoContextTakeover / requestMaxWindowBits" are the server_* params);
 * 13.8-13.25 (lifeline) add client_no_context_takeover and every window size
 * 8..15 for both sides; 13.26 (lifeline) checks the framing rules.
 */
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import {
  binary,
  cleanClose,
  close,
  cont,
  echoBinary,
  echoText,
  fails,
  hex,
  ping,
  pongOf,
  send,
  text,
  type Case,
  type DeflateCombo,
  type ExpectedEvent,
  type Group,
  type Step,
} from '../harness.js';
import { MiB, deflateCount } from './scale.js';
import { seededRandom as prng } from '../../../src/session/backoff.js';

// --- corpora


const CORPUS_SIZE = 200 * 1024;

function jsonCorpus(): Buffer {
  const r = prng(1);
  const words = ['alpha', 'beta', 'gamma', 'delta', 'status', 'active', 'pending', 'user', 'order', 'item', 'price', 'quantity'];
  const out: string[] = [];
  let len = 0;
  for (let i = 0; len < CORPUS_SIZE; i++) {
    const rec = JSON.stringify({ id: i, name: `${words[Math.floor(r() * words.length)]}-${Math.floor(r() * 1000)}`, price: Math.round(r() * 100000) / 100, tags: [words[i % words.length], words[(i * 7) % words.length]], ok: r() > 0.5 });
    out.push(rec);
    len += rec.length + 2;
  }
  return Buffer.from(`[${out.join(',\n')}]`).subarray(0, CORPUS_SIZE);
}

function bitmapCorpus(): Buffer {
  const r = prng(2);
  const w = 512;
  const img = Buffer.alloc(w * w);
  for (let y = 0; y < w; y++) for (let x = 0; x < w; x++) img[y * w + x] = (Math.round(128 + 60 * Math.sin(x / 23) * Math.cos(y / 31) + (x ^ y) / 8 + r() * 12) & 0xff);
  return Buffer.concat([hex('42 4d 36 04 04 00 00 00 00 00 36 04 00 00 28 00 00 00 00 02 00 00 00 02 00 00 01 00 08 00'), img]).subarray(0, CORPUS_SIZE);
}

function germanCorpus(): Buffer {
  const r = prng(3);
  const words = 'Habe nun ach Philosophie Juristerei und Medizin und leider auch Theologie durchaus studiert mit heißem Bemühn Da steh ich nun ich armer Tor und bin so klug als wie zuvor heiße Magister heiße Doktor gar Schüler Töne Größe Übermut'.split(' ');
  const out: string[] = [];
  let len = 0;
  while (len < CORPUS_SIZE) {
    const line = Array.from({ length: 4 + Math.floor(r() * 8) }, () => words[Math.floor(r() * words.length)]).join(' ') + (r() > 0.7 ? '!\n' : ',\n');
    out.push(line);
    len += Buffer.byteLength(line);
  }
  return Buffer.from(out.join(''), 'utf8').subarray(0, CORPUS_SIZE);
}

function htmlCorpus(): Buffer {
  const r = prng(4);
  const out: string[] = ['<!DOCTYPE html><html><head><title>Report</title></head><body>\n'];
  let len = 0;
  for (let i = 0; len < CORPUS_SIZE; i++) {
    const row = `<tr class="row-${i % 2 ? 'odd' : 'even'}"><td id="c${i}">${Math.floor(r() * 1e6)}</td><td><a href="/items/${i}">Item ${i}</a></td><td>${r() > 0.5 ? 'yes' : 'no'}</td></tr>\n`;
    out.push(row);
    len += row.length;
  }
  return Buffer.from(out.join('')).subarray(0, CORPUS_SIZE);
}

function pdfCorpus(): Buffer {
  const r = prng(5);
  const parts: Buffer[] = [Buffer.from('%PDF-1.4\n')];
  let len = 0;
  for (let i = 1; len < CORPUS_SIZE; i++) {
    const stream = Buffer.from(Array.from({ length: 512 + Math.floor(r() * 2048) }, () => Math.floor(r() * 256)));
    const head = Buffer.from(`${i} 0 obj\n<< /Length ${stream.length} /Filter /FlateDecode >>\nstream\n`);
    const tail = Buffer.from('\nendstream\nendobj\n');
    parts.push(head, stream, tail);
    len += head.length + stream.length + tail.length;
  }
  return Buffer.concat(parts).subarray(0, CORPUS_SIZE);
}

interface Corpus {
  desc: string;
  binary: boolean;
  data: Buffer;
}
const CORPORA: Corpus[] = [
  { desc: 'Large JSON data (utf8)', binary: false, data: jsonCorpus() },
  { desc: 'Bitmap picture 512x512 grey (binary)', binary: true, data: bitmapCorpus() },
  { desc: 'Human readable German text (sent as binary, like Autobahn)', binary: true, data: germanCorpus() },
  { desc: 'Large HTML file (utf8)', binary: false, data: htmlCorpus() },
  { desc: 'PDF-like mix of text and incompressible streams (binary)', binary: true, data: pdfCorpus() },
];

/** Autobahn's (payload size, auto-fragment size) pairs. */
const MSG_SIZES: Array<[number, number]> = [
  [16, 0], [64, 0], [256, 0], [1024, 0], [4096, 0], [8192, 0], [16384, 0], [32768, 0], [65536, 0], [131072, 0],
  [8192, 256], [16384, 256], [32768, 256], [65536, 256], [131072, 256], [131072, 1024], [131072, 4096], [131072, 32768],
];


/** Consecutive slices of the corpus (wrapping), like Autobahn's payload pointer. */
function slices(c: Corpus, size: number, count: number): Buffer[] {
  const out: Buffer[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    const end = p + size;
    out.push(end <= c.data.length ? c.data.subarray(p, end) : Buffer.concat([c.data.subarray(p), c.data.subarray(0, end - c.data.length)]));
    p = end % c.data.length;
  }
  return out;
}

function echoCase(id: string, c: Corpus, size: number, frag: number, combo: DeflateCombo, comboDesc: string, deflateOffer?: string): Case {
  const count = deflateCount(size);
  const msgs = slices(c, size, count);
  const steps: Step[] = [];
  msgs.forEach((m, i) => steps.push({ op: 'sendMessage', data: m, binary: c.binary, fragmentSize: frag }, { op: 'awaitEvents', count: i + 1 }));
  const events: ExpectedEvent[] = msgs.map((m) => (c.binary ? echoBinary(m) : echoText(m)));
  return {
    id,
    description: `Send ${count} (Autobahn: 1000) compressed messages each of payload size ${size}, auto-fragment to ${frag} octets; ${comboDesc}`,
    deflate: combo,
    ...(deflateOffer ? { deflateOffer } : {}),
    steps,
    expect: { events, close: cleanClose(), compressedEchoes: true },
    timeoutMs: 5000 + count * size / 20000,
  };
}

// --- 12.x

const group12: Case[] = CORPORA.flatMap((c, j) => MSG_SIZES.map(([size, frag], i) => echoCase(`12.${j + 1}.${i + 1}`, c, size, frag, {}, `${c.desc}, default offer`)));

// --- 13.x

function describeCombo(c: DeflateCombo): string {
  const p: string[] = [];
  if (c.serverNoContextTakeover) p.push('server_no_context_takeover');
  if (c.clientNoContextTakeover) p.push('client_no_context_takeover');
  if (c.serverMaxWindowBits !== undefined) p.push(`server_max_window_bits=${c.serverMaxWindowBits}`);
  if (c.clientMaxWindowBits !== undefined) p.push(`client_max_window_bits=${c.clientMaxWindowBits}`);
  return p.length ? p.join(', ') : 'default parameters';
}

const COMBOS: Array<{ combo: DeflateCombo; offer?: string }> = [
  { combo: {} },
  { combo: { serverNoContextTakeover: true } },
  { combo: { serverMaxWindowBits: 8 } },
  { combo: { serverMaxWindowBits: 15 } },
  { combo: { serverNoContextTakeover: true, serverMaxWindowBits: 8 } },
  { combo: { serverNoContextTakeover: true, serverMaxWindowBits: 15 } },
  {
    // 13.7: several offers, the first acceptable one wins (server driver; our client makes one offer).
    combo: { serverNoContextTakeover: true, serverMaxWindowBits: 8 },
    offer:
      'permessage-deflate; server_no_context_takeover; server_max_window_bits=8; client_max_window_bits, permessage-deflate; server_no_context_takeover; client_max_window_bits, permessage-deflate; client_max_window_bits',
  },
  { combo: { clientNoContextTakeover: true } },
  ...[8, 9, 10, 11, 12, 13, 14, 15].map((b) => ({ combo: { clientMaxWindowBits: b } })),
  ...[9, 10, 11, 12, 13, 14].map((b) => ({ combo: { serverMaxWindowBits: b } })),
  { combo: { clientNoContextTakeover: true, clientMaxWindowBits: 8 } },
  { combo: { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 9 } },
  { combo: { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15 } },
];

const SIZES13: Array<[number, number]> = [[16, 0], [256, 0], [4096, 0], [32768, 0], [131072, 0], [131072, 4096]];

const group13: Case[] = COMBOS.flatMap(({ combo, offer }, j) =>
  SIZES13.map(([size, frag], i) =>
    echoCase(`13.${j + 1}.${i + 1}`, CORPORA[0]!, size, frag, combo, `${describeCombo(combo)}${offer ? ' (offered among several offers)' : ''}`, offer),
  ),
);

// --- 13.26 (lifeline): framing rules of RFC 7692

/** A first message compressed with a fresh context, trailer stripped (RFC 7692 7.2.1). */
function deflated(data: Buffer | string): Buffer {
  const out = zlib.deflateRawSync(Buffer.from(data), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.ok(out.subarray(out.length - 4).equals(hex('00 00 ff ff')));
  return out.subarray(0, out.length - 4);
}

const HELLO = 'Hello, compressed world! Hello, compressed world! Hello!';
const C = deflated(HELLO);
const JSONISH = CORPORA[0]!.data.subarray(0, 4096);

const rules: Case[] = [
  {
    id: '13.26.1',
    description: 'Compressed message whose continuation frame also has RSV1 set (RFC 7692 6.1: first frame only)',
    deflate: {},
    steps: [send(text(C.subarray(0, 5), { rsv: 4, fin: false }), cont(C.subarray(5), { rsv: 4 }))],
    expect: { events: [], close: fails([1002]) },
  },
  { id: '13.26.2', description: 'Ping with RSV1 set (RFC 7692 6.1: never on control frames)', deflate: {}, steps: [send(ping('x', { rsv: 4 }))], expect: { events: [], close: fails([1002]) } },
  { id: '13.26.3', description: 'Close with RSV1 set', deflate: {}, steps: [send(close(1000, '', { rsv: 4 }))], expect: { events: [], close: fails([1002]) } },
  {
    id: '13.26.4',
    description: 'RSV1 text frame whose payload is not DEFLATE data (reserved block type)',
    note: 'RFC 7692 does not name a code; ours is 1007 (invalid payload data).',
    deflate: {},
    steps: [send(text(hex('ff ff ff ff ff ff ff ff'), { rsv: 4 }))],
    expect: { events: [], close: fails([1007]) },
  },
  {
    id: '13.26.5',
    description: 'Compressed text message that inflates to invalid UTF-8',
    deflate: {},
    steps: [send(text(deflated(hex('ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64')), { rsv: 4 }))],
    expect: { events: [], close: fails([1007]) },
  },
  {
    id: '13.26.6',
    description: 'Uncompressed message (RSV1 = 0) between compressed ones: all echoed',
    deflate: {},
    steps: [
      { op: 'sendMessage', data: JSONISH, binary: false },
      { op: 'sendMessage', data: Buffer.from('not compressed'), binary: false, compress: false },
      { op: 'sendMessage', data: JSONISH, binary: false },
    ],
    expect: { events: [echoText(JSONISH), echoText('not compressed'), echoText(JSONISH)], close: cleanClose(), compressedEchoes: true },
  },
  {
    id: '13.26.7',
    description: 'Compressed message in 3 frames with a ping between frames 2 and 3: pong first, then the echo',
    deflate: {},
    steps: [send(text(C.subarray(0, 4), { rsv: 4, fin: false }), cont(C.subarray(4, 9), { fin: false }), ping('in between'), cont(C.subarray(9)))],
    expect: { events: [pongOf('in between'), echoText(HELLO)], close: cleanClose(), compressedEchoes: true },
  },
  {
    id: '13.26.8',
    description: 'Compressed empty message',
    deflate: {},
    steps: [{ op: 'sendMessage', data: Buffer.alloc(0), binary: true }],
    expect: { events: [echoBinary('')], close: cleanClose(), compressedEchoes: true },
  },
  {
    id: '13.26.9',
    description: 'Decompression bomb: 1 MiB of zeros compressed to about 1 KiB, maxMessageSize 64 KiB: fail with 1009',
    deflate: {},
    impl: { maxMessageSize: 64 * 1024 },
    steps: [send(binary(deflated(Buffer.alloc(MiB)), { rsv: 4 }))],
    expect: { events: [], close: fails([1009]) },
  },
  {
    id: '13.26.10',
    description: 'Compressed message ending with a BFINAL block instead of a sync flush (RFC 7692 7.2.3.3)',
    deflate: { clientNoContextTakeover: true, serverNoContextTakeover: true },
    steps: [send(text(zlib.deflateRawSync(Buffer.from(HELLO)), { rsv: 4 }))],
    expect: { events: [echoText(HELLO)], close: cleanClose(), compressedEchoes: true },
  },
  {
    id: '13.26.11',
    description: 'Default threshold (1024): a 16-byte echo goes out uncompressed, a 4 KiB echo compressed',
    deflate: {},
    implDeflate: { threshold: 1024 },
    steps: [{ op: 'sendMessage', data: Buffer.from('sixteen bytes!!!'), binary: false }, { op: 'sendMessage', data: JSONISH, binary: false }],
    expect: {
      events: [echoText('sixteen bytes!!!'), echoText(JSONISH)],
      close: cleanClose(),
      check: (t) => {
        const m = t.events.filter((e) => e.type === 'message');
        assert.equal(m[0]?.type === 'message' && m[0].compressed, false, 'the 16-byte echo was compressed');
        assert.equal(m[1]?.type === 'message' && m[1].compressed, true, 'the 4 KiB echo was not compressed');
      },
    },
  },
  {
    id: '13.26.12',
    description: 'Context takeover: the same 4 KiB sent 3 times; later copies compress to a few bytes and still echo',
    deflate: {},
    steps: [1, 2, 3].flatMap((n): Step[] => [{ op: 'sendMessage', data: JSONISH, binary: true }, { op: 'awaitEvents', count: n }]),
    expect: { events: [echoBinary(JSONISH), echoBinary(JSONISH), echoBinary(JSONISH)], close: cleanClose(), compressedEchoes: true },
  },
  {
    id: '13.26.13',
    description: 'A 128 KiB compressed message and a close frame in one write: the echo goes out before the close answer',
    deflate: {},
    steps: [send(binary(deflated(CORPORA[1]!.data.subarray(0, 131072)), { rsv: 4 }), close(1000))],
    expect: { events: [echoBinary(CORPORA[1]!.data.subarray(0, 131072))], close: cleanClose(), compressedEchoes: true },
  },
  {
    id: '13.26.14',
    description: 'Same as 13.26.13 with a 56-byte message: the echo still goes out before the close answer',
    deflate: {},
    steps: [send(text(C, { rsv: 4 }), close(1000))],
    expect: { events: [echoText(HELLO)], close: cleanClose(), compressedEchoes: true },
  },
  {
    id: '13.26.15',
    description: 'A compressed message, a ping and an uncompressed message in one write: processed in order, pong not queued behind compression',
    note:
      'RFC 6455 5.5.2 only asks for the pong "as soon as is practical". Ours: control frames do not wait for compression jobs, so the pong ' +
      'overtakes the echoes still being compressed; the echoes keep their order.',
    deflate: {},
    steps: [send(text(C, { rsv: 4 }), ping('after'), text('plain'))],
    expect: { events: [pongOf('after'), echoText(HELLO), echoText('plain')], close: cleanClose(), compressedEchoes: true },
  },
  {
    id: '13.26.16',
    description: 'Decompression bomb in 4 frames (1 MiB of zeros), maxMessageSize 64 KiB: fail with 1009',
    deflate: {},
    impl: { maxMessageSize: 64 * 1024 },
    steps: [
      (() => {
        const z = deflated(Buffer.alloc(MiB));
        const q = Math.ceil(z.length / 4);
        return send(...[0, 1, 2, 3].map((i) => (i === 0 ? binary : cont)(z.subarray(i * q, (i + 1) * q), { rsv: i === 0 ? 4 : 0, fin: i === 3 })));
      })(),
    ],
    expect: { events: [], close: fails([1009]) },
  },
];

export const deflate12: Group = {
  id: '12',
  title: 'WebSocket compression (different payloads)',
  covers: 'permessage-deflate, default offer: 5 kinds of payload x 18 sizes 16 B..128 KiB, auto-fragmented to 256 B..32 KiB; counts scaled',
  cases: group12,
};

export const deflate13: Group = {
  id: '13',
  title: 'WebSocket compression (different parameters)',
  covers: 'server/client_no_context_takeover, server/client_max_window_bits 8..15, several offers; 6 sizes each; RSV1 rules, corrupt data, bomb, BFINAL, threshold',
  cases: [...group13, ...rules],
};
