/**
 * 10.x Auto-fragmentation. 10.1.1 is Autobahn's: the peer auto-fragments a
 * 64 KiB message into 1300-byte frames. 10.2.x (lifeline) turn it around:
 * our side is configured with fragmentSize and must send a large message as
 * several frames of at most that size (RFC 6455 5.4), which the peer checks
 * on the wire before comparing the reassembled payload.
 */
import assert from 'node:assert/strict';
import { cleanClose, cont, echoBinary, echoText, OP, send, text, binary, type Case, type Group, type Trace } from '../harness.js';
import { filled } from './scale.js';

/** The echo (event `index`) came as ceil(len / size) frames of at most `size` bytes, opcode then continuations. */
function framedAs(size: number, opcode: number, index = 0, compressed = false) {
  return (t: Trace): void => {
    const e = t.events.filter((x) => x.type === 'message')[index];
    assert.ok(e && e.type === 'message', `echo #${index + 1} missing`);
    const wire = e.frames.reduce((n, f) => n + f.length, 0);
    const want = Math.max(1, Math.ceil(wire / size));
    assert.equal(e.frames.length, want, `echo of ${wire} wire bytes came in ${e.frames.length} frames, expected ${want} of at most ${size}: [${e.frames.map((f) => f.length).join(', ')}]`);
    e.frames.forEach((f, i) => {
      assert.ok(f.length <= size, `frame ${i + 1} carries ${f.length} bytes, more than fragmentSize ${size}`);
      if (i < e.frames.length - 1) assert.equal(f.length, size, `frame ${i + 1} of ${e.frames.length} is not full (${f.length} of ${size} bytes)`);
      assert.equal(f.opcode, i === 0 ? opcode : OP.CONT, `opcode of frame ${i + 1}`);
      assert.equal(f.fin, i === e.frames.length - 1, `FIN of frame ${i + 1}`);
      // RFC 7692 6.1: RSV1 on the first frame of a compressed message only.
      assert.equal((f.rsv & 4) !== 0, compressed && i === 0, `RSV1 of frame ${i + 1}`);
    });
    assert.equal(e.compressed, compressed, 'compressed flag of the echo');
  };
}

const M64 = filled(65536, '*');
const KOSME = Buffer.from('κόσμε', 'utf8');
const COMPRESSIBLE = Buffer.from(Array.from({ length: 2000 }, (_, i) => `{"id":${i},"name":"item-${i % 37}","ok":${i % 3 === 0}}`).join(','));

const peerFragments: Case = {
  id: '10.1.1',
  description: 'Send text message with payload of length 65536 auto-fragmented with autoFragmentSize = 1300',
  steps: [send(...Array.from({ length: Math.ceil(65536 / 1300) }, (_, i) => (i === 0 ? text : cont)(M64.subarray(i * 1300, (i + 1) * 1300), { fin: (i + 1) * 1300 >= 65536 })))],
  expect: { events: [echoText(M64)], close: cleanClose() },
};

const ours: Case[] = [
  {
    id: '10.2.1',
    description: 'Our side with fragmentSize 1300 echoes a 64 KiB text message as 51 frames of at most 1300 bytes',
    impl: { fragmentSize: 1300 },
    steps: [send(text(M64))],
    expect: { events: [echoText(M64)], close: cleanClose(), check: framedAs(1300, OP.TEXT) },
  },
  {
    id: '10.2.2',
    description: 'fragmentSize 4096: a 64 KiB binary message goes out as 16 frames of 4096 bytes',
    impl: { fragmentSize: 4096 },
    steps: [send(binary(filled(65536, 0xab)))],
    expect: { events: [echoBinary(filled(65536, 0xab))], close: cleanClose(), check: framedAs(4096, OP.BINARY) },
  },
  {
    id: '10.2.3',
    description: 'fragmentSize 4096: a message of exactly 4096 bytes goes out as one frame',
    impl: { fragmentSize: 4096 },
    steps: [send(binary(filled(4096, 1)))],
    expect: { events: [echoBinary(filled(4096, 1))], close: cleanClose(), check: framedAs(4096, OP.BINARY) },
  },
  {
    id: '10.2.4',
    description: 'fragmentSize 4096: a message of 4097 bytes goes out as 4096 + 1',
    impl: { fragmentSize: 4096 },
    steps: [send(binary(filled(4097, 2)))],
    expect: { events: [echoBinary(filled(4097, 2))], close: cleanClose(), check: framedAs(4096, OP.BINARY) },
  },
  {
    id: '10.2.5',
    description: 'fragmentSize 1: κόσμε goes out as 11 one-byte frames that split every code point; the peer reassembles valid UTF-8',
    impl: { fragmentSize: 1 },
    steps: [send(text(KOSME))],
    expect: { events: [echoText(KOSME)], close: cleanClose(), check: framedAs(1, OP.TEXT) },
  },
  {
    id: '10.2.6',
    description: 'fragmentSize 1 with an empty text message: one empty frame',
    impl: { fragmentSize: 1 },
    steps: [send(text(''))],
    expect: { events: [echoText('')], close: cleanClose(), check: framedAs(1, OP.TEXT) },
  },
  {
    id: '10.2.7',
    description: 'fragmentSize 1000 while receiving fragmented: a message in 1300-byte frames is echoed in 1000-byte frames',
    impl: { fragmentSize: 1000 },
    steps: [peerFragments.steps[0]!],
    expect: { events: [echoText(M64)], close: cleanClose(), check: framedAs(1000, OP.TEXT) },
  },
  {
    id: '10.2.8',
    description: 'fragmentSize 200 with permessage-deflate: the compressed echo is split into 200-byte frames, RSV1 on the first only',
    impl: { fragmentSize: 200 },
    deflate: {},
    steps: [{ op: 'sendMessage', data: COMPRESSIBLE, binary: false }],
    expect: { events: [echoText(COMPRESSIBLE)], close: cleanClose(), compressedEchoes: true, check: framedAs(200, OP.TEXT, 0, true) },
  },
  {
    id: '10.2.9',
    description: 'fragmentSize 512: three messages in a row, each fragmented on its own',
    impl: { fragmentSize: 512 },
    steps: [send(text(filled(1500, 'a')), binary(filled(1024, 3)), text(filled(100, 'c')))],
    expect: {
      events: [echoText(filled(1500, 'a')), echoBinary(filled(1024, 3)), echoText(filled(100, 'c'))],
      close: cleanClose(),
      check: (t) => {
        framedAs(512, OP.TEXT, 0)(t);
        framedAs(512, OP.BINARY, 1)(t);
        framedAs(512, OP.TEXT, 2)(t);
      },
    },
  },
];

export const autofragment: Group = {
  id: '10',
  title: 'Auto-fragmentation',
  covers: 'peer-fragmented 64 KiB message; our fragmentSize: frame count/sizes/opcodes/FIN on the wire, code points split across frames, with permessage-deflate',
  cases: [peerFragments, ...ours],
};
