/**
 * 1.x Framing: text and binary messages of every length-encoding boundary
 * (RFC 6455 5.2: 7-bit, 16-bit and 64-bit payload lengths), sent whole or
 * in chops; then lifeline's own 1.3.x for malformed headers.
 */
import { binary, cleanClose, echoBinary, echoText, fails, send, sendChopped, text, type Case, type Group } from '../harness.js';
import { filled } from './scale.js';

const LENGTHS = [0, 125, 126, 127, 128, 65535, 65536];

function lengths(kind: 'text' | 'binary', sub: number): Case[] {
  const cases: Case[] = LENGTHS.map((n, i) => {
    const payload = kind === 'text' ? filled(n, '*') : filled(n, 0xfe);
    return {
      id: `1.${sub}.${i + 1}`,
      description: `Send ${kind} message with payload of length ${n}`,
      steps: [send(kind === 'text' ? text(payload) : binary(payload))],
      expect: { events: [kind === 'text' ? echoText(payload) : echoBinary(payload)], close: cleanClose() },
    };
  });
  const big = kind === 'text' ? filled(65536, '*') : filled(65536, 0xfe);
  cases.push({
    id: `1.${sub}.8`,
    description: `Send ${kind} message with payload of length 65536, sent in chops of 997 octets`,
    steps: [sendChopped(997, 0, kind === 'text' ? text(big) : binary(big))],
    expect: { events: [kind === 'text' ? echoText(big) : echoBinary(big)], close: cleanClose() },
  });
  return cases;
}

const lifeline: Case[] = [
  {
    id: '1.3.1',
    description: 'Text frame of 10 bytes whose length uses the 16-bit encoding (RFC 6455 5.2: minimal encoding required)',
    steps: [send(text('0123456789', { lengthEncoding: 16 }))],
    expect: { events: [], close: fails([1002]) },
  },
  {
    id: '1.3.2',
    description: 'Binary frame of 200 bytes whose length uses the 64-bit encoding',
    steps: [send(binary(filled(200, 1), { lengthEncoding: 64 }))],
    expect: { events: [], close: fails([1002]) },
  },
  {
    id: '1.3.3',
    description: 'Frame header with a 64-bit length whose most significant bit is set: fail on the header alone',
    steps: [{ op: 'sendSplit', frame: binary('', { declaredLength: 1n << 63n }), at: [], after: { 0: { fail: [1002] } } }],
    expect: { events: [], close: fails([1002]) },
  },
  {
    id: '1.3.4',
    description: 'A frame that breaks the masking rule (RFC 6455 5.1: unmasked from a client, masked from a server)',
    steps: [send(text('Hello', { wrongMask: true }))],
    expect: { events: [], close: fails([1002]) },
  },
  {
    id: '1.3.5',
    description: 'Valid message, then a frame that breaks the masking rule',
    steps: [send(text('Hello'), text('World', { wrongMask: true }))],
    expect: { events: [echoText('Hello')], close: fails([1002]) },
  },
  {
    id: '1.3.6',
    description: 'Text message of 300 bytes (16-bit length) sent octet by octet: headers split across every read',
    steps: [sendChopped(1, 0, text(filled(300, 'x')))],
    expect: { events: [echoText(filled(300, 'x'))], close: cleanClose() },
  },
  {
    id: '1.3.7',
    description: 'Binary message of 65536 bytes (64-bit length) whose header arrives in chops of 3 octets',
    steps: [sendChopped(3, undefined, binary(filled(65536, 7)))],
    expect: { events: [echoBinary(filled(65536, 7))], close: cleanClose() },
  },
];

export const framing: Group = {
  id: '1',
  title: 'Framing',
  covers: 'text/binary lengths 0, 125, 126, 127, 128, 65535, 65536, chopped sends; non-minimal lengths, 64-bit MSB, masking rule',
  cases: [...lengths('text', 1), ...lengths('binary', 2), ...lifeline],
};
