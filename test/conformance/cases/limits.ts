/**
 * 9.x Limits and performance at Autobahn's sizes (up to 16 MiB messages, 4 MiB
 * in 64-byte frames, 1000 round trips), shrunk by LIFELINE_CONFORMANCE_SCALE < 1.
 * 9.9 (lifeline) checks maxMessageSize / maxFrameSize at their boundaries:
 * 1009, and fail fast on a header that announces too much.
 */
import { binary, cleanClose, cont, echoBinary, echoText, fails, send, sendChopped, text, type Case, type ExpectedEvent, type FrameSpec, type Group, type Step } from '../harness.js';
import { KiB, MiB, autobahn, filled } from './scale.js';

type Kind = 'text' | 'binary';
const TEXT_FILL = 'BAsd7&jh23';
const BIN_FILL = 0xfe;
const payloadOf = (kind: Kind, size: number) => (kind === 'text' ? filled(size, TEXT_FILL) : filled(size, BIN_FILL));
const echoOf = (kind: Kind, data: Buffer): ExpectedEvent => (kind === 'text' ? echoText(data) : echoBinary(data));
const frameOf = (kind: Kind, data: Buffer, more: Partial<FrameSpec> = {}): FrameSpec => (kind === 'text' ? text(data, more) : binary(data, more));
const sizeName = (n: number) => (n >= MiB ? `${n / MiB} MiB` : n >= KiB ? `${n / KiB} KiB` : `${n} B`);
/** Sizes scale down, but never below 64 KiB nor to a non-multiple of the fragment sizes. */
const big = (full: number) => Math.max(64 * KiB, Math.round(autobahn(full) / KiB) * KiB);
/** Timeouts grow with the bytes moved (unscaled ms). */
const budget = (bytes: number) => 5000 + Math.ceil(bytes / MiB) * 400;

const SIZES = [64 * KiB, 256 * KiB, MiB, 4 * MiB, 8 * MiB, 16 * MiB];
const FRAGMENTS = [64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB, 4 * MiB];
const CHOPS = [64, 128, 256, 512, 1024, 2048];
const RTT_SIZES = [0, 16, 64, 256, 1024, 4096];

function oneFrame(sub: number, kind: Kind): Case[] {
  return SIZES.map((full, i) => {
    const size = big(full);
    const data = payloadOf(kind, size);
    return {
      id: `9.${sub}.${i + 1}`,
      description: `Send ${kind} message of ${sizeName(size)} (Autobahn: ${sizeName(full)}) in one frame`,
      steps: [send(frameOf(kind, data))],
      expect: { events: [echoOf(kind, data)], close: cleanClose() },
      timeoutMs: budget(2 * size),
    };
  });
}

function fragmented(sub: number, kind: Kind): Case[] {
  const size = big(4 * MiB);
  const data = payloadOf(kind, size);
  return FRAGMENTS.map((full, i) => {
    const frag = Math.min(size, full);
    const frames: FrameSpec[] = [];
    for (let off = 0; off < size; off += frag) {
      const end = Math.min(off + frag, size);
      frames.push(off === 0 ? frameOf(kind, data.subarray(off, end), { fin: end === size }) : cont(data.subarray(off, end), { fin: end === size }));
    }
    return {
      id: `9.${sub}.${i + 1}`,
      description: `Send fragmented ${kind} message of ${sizeName(size)} (Autobahn: 4 MiB) in frames of ${sizeName(frag)}`,
      steps: [send(...frames)],
      expect: { events: [echoOf(kind, data)], close: cleanClose() },
      timeoutMs: budget(2 * size) + frames.length / 20,
    };
  });
}

function chopped(sub: number, kind: Kind): Case[] {
  const size = big(MiB);
  const data = payloadOf(kind, size);
  return CHOPS.map((chop, i) => ({
    id: `9.${sub}.${i + 1}`,
    description: `Send ${kind} message of ${sizeName(size)} (Autobahn: 1 MiB) written in chops of ${chop} octets`,
    steps: [sendChopped(chop, undefined, frameOf(kind, data))],
    expect: { events: [echoOf(kind, data)], close: cleanClose() },
    timeoutMs: budget(2 * size) + size / chop / 20,
  }));
}

function roundTrips(sub: number, kind: Kind): Case[] {
  const count = autobahn(1000, 20);
  return RTT_SIZES.map((size, i) => {
    const data = payloadOf(kind, size);
    const steps: Step[] = [];
    for (let n = 1; n <= count; n++) steps.push(send(frameOf(kind, data)), { op: 'awaitEvents', count: n });
    return {
      id: `9.${sub}.${i + 1}`,
      description: `Send ${count} (Autobahn: 1000) ${kind} messages of ${size} bytes, each after the previous echo arrived`,
      steps,
      expect: { events: Array.from({ length: count }, () => echoOf(kind, data)), close: cleanClose() },
      timeoutMs: 5000 + count * 5,
    };
  });
}

const LIMIT = 64 * KiB;
const lifeline: Case[] = [
  {
    id: '9.9.1',
    description: `maxMessageSize ${LIMIT}: a text frame header announcing ${LIMIT + 1} bytes fails with 1009 before any payload is sent`,
    impl: { maxMessageSize: LIMIT },
    steps: [{ op: 'sendSplit', frame: text(filled(LIMIT + 1, 'x')), at: [0], after: { 0: { fail: [1009] } } }],
    expect: { events: [], close: fails([1009]) },
  },
  {
    id: '9.9.2',
    description: `maxMessageSize ${LIMIT}: four 16 KiB fragments are fine, the header of a fifth fails with 1009 at once`,
    impl: { maxMessageSize: LIMIT },
    steps: [
      send(binary(filled(16 * KiB, 1), { fin: false }), cont(filled(16 * KiB, 2), { fin: false }), cont(filled(16 * KiB, 3), { fin: false }), cont(filled(16 * KiB, 4), { fin: false })),
      { op: 'expectOpen', ms: 20 },
      { op: 'sendSplit', frame: cont(filled(16 * KiB, 5)), at: [0], after: { 0: { fail: [1009] } } },
    ],
    expect: { events: [], close: fails([1009]) },
  },
  {
    id: '9.9.3',
    description: `maxMessageSize ${LIMIT}: a message of exactly ${LIMIT} bytes is echoed`,
    impl: { maxMessageSize: LIMIT },
    steps: [send(text(filled(LIMIT, 'x')))],
    expect: { events: [echoText(filled(LIMIT, 'x'))], close: cleanClose() },
  },
  {
    id: '9.9.4',
    description: 'maxFrameSize 1024: an 8 KiB message in 1024-byte frames is echoed',
    impl: { maxFrameSize: 1024 },
    steps: [send(...Array.from({ length: 8 }, (_, i) => (i === 0 ? binary : cont)(filled(1024, i), { fin: i === 7 })))],
    expect: { events: [echoBinary(Buffer.concat(Array.from({ length: 8 }, (_, i) => filled(1024, i))))], close: cleanClose() },
  },
  {
    id: '9.9.5',
    description: 'maxFrameSize 1024: a 1025-byte frame fails with 1009',
    impl: { maxFrameSize: 1024 },
    steps: [send(binary(filled(1025, 1)))],
    expect: { events: [], close: fails([1009]) },
  },
  {
    id: '9.9.6',
    description: 'A header announcing 2^53 bytes fails with 1009 on the header alone (default limits)',
    steps: [{ op: 'sendSplit', frame: binary('', { declaredLength: 1n << 53n }), at: [], after: { 0: { fail: [1009] } } }],
    expect: { events: [], close: fails([1009]) },
  },
  {
    id: '9.9.7',
    description: `${autobahn(1000, 50)} small text messages pipelined in one write, echoed in order`,
    steps: [send(...Array.from({ length: autobahn(1000, 50) }, (_, i) => text(`message ${i}`)))],
    expect: { events: Array.from({ length: autobahn(1000, 50) }, (_, i) => echoText(`message ${i}`)), close: cleanClose() },
  },
];

export const limits: Group = {
  id: '9',
  title: 'Limits/Performance',
  covers: 'large text/binary messages in one frame, in fragments of 64 B..4 MiB, in small chops; round trips; maxMessageSize/maxFrameSize boundaries (scaled)',
  cases: [
    ...oneFrame(1, 'text'),
    ...oneFrame(2, 'binary'),
    ...fragmented(3, 'text'),
    ...fragmented(4, 'binary'),
    ...chopped(5, 'text'),
    ...chopped(6, 'binary'),
    ...roundTrips(7, 'text'),
    ...roundTrips(8, 'binary'),
    ...lifeline,
  ],
};
