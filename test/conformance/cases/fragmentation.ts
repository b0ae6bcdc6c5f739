/**
 * 5.x Fragmentation (RFC 6455 5.4): control frames may be interleaved but not
 * fragmented; continuations need a message in progress; a new data frame may
 * not start inside a fragmented message.
 */
import {
  binary,
  close,
  cont,
  echoBinary,
  echoText,
  cleanClose,
  fails,
  ping,
  pong,
  pongOf,
  send,
  sendChopped,
  sendSync,
  text,
  type Case,
  type Group,
  type Step,
} from '../harness.js';
import { filled } from './scale.js';

const F1 = 'fragment1';
const F2 = 'fragment2';
const PING = 'ping payload';

/** Continuation frame with nothing to continue, then a text message; whole, frame-wise or octet-wise. */
function orphan(id: string, fin: boolean, how: 'whole' | 'frames' | 'octets'): Case {
  const frames = [cont('non-continuation payload', { fin }), text('Hello, world!')];
  const steps: Step[] = how === 'whole' ? [send(...frames)] : how === 'frames' ? sendSync(...frames) : [sendChopped(1, 0, ...frames)];
  const chop = how === 'whole' ? 'sent in one chop' : how === 'frames' ? 'sent in per-frame chops' : 'sent in octet-wise chops';
  return {
    id,
    description: `Send unfragmented text message after continuation frame with FIN = ${fin}, where there is nothing to continue, ${chop}`,
    steps,
    expect: { events: [], close: fails([1002]) },
  };
}

const frags519 = ['fragment1', 'fragment2', 'fragment3', 'fragment4', 'fragment5'];
const pings519 = ['pongme 1!', 'pongme 2!'];
function case519(id: string, sync: boolean): Case {
  const part1 = [text(frags519[0]!, { fin: false }), cont(frags519[1]!, { fin: false }), ping(pings519[0]!)];
  const part2 = [cont(frags519[2]!, { fin: false }), cont(frags519[3]!, { fin: false }), ping(pings519[1]!), cont(frags519[4]!)];
  return {
    id,
    description: `Fragmented text message in 5 frames with pings after frame 2 and 4; the first pong must come before the rest is sent${sync ? '; frame-wise writes' : ''}`,
    steps: [
      ...(sync ? sendSync(...part1) : [send(...part1)]),
      // Autobahn waits 1 s here; we wait for the pong itself: it must come while the message is incomplete.
      { op: 'awaitEvents', count: 1 },
      ...(sync ? sendSync(...part2) : [send(...part2)]),
    ],
    expect: { events: [pongOf(pings519[0]), pongOf(pings519[1]), echoText(frags519.join(''))], close: cleanClose() },
  };
}

const cases: Case[] = [
  { id: '5.1', description: 'Send ping fragmented into 2 fragments', steps: [send(ping(F1, { fin: false }), cont(F2))], expect: { events: [], close: fails([1002]) } },
  { id: '5.2', description: 'Send pong fragmented into 2 fragments', steps: [send(pong(F1, { fin: false }), cont(F2))], expect: { events: [], close: fails([1002]) } },
  {
    id: '5.3',
    description: 'Send text message fragmented into 2 fragments',
    steps: [send(text(F1, { fin: false }), cont(F2))],
    expect: { events: [echoText(F1 + F2)], close: cleanClose() },
  },
  {
    id: '5.4',
    description: 'Same as 5.3, frame-wise writes',
    steps: sendSync(text(F1, { fin: false }), cont(F2)),
    expect: { events: [echoText(F1 + F2)], close: cleanClose() },
  },
  {
    id: '5.5',
    description: 'Send text message fragmented into 2 fragments, octet-wise chops',
    steps: [sendChopped(1, 0, text(F1, { fin: false }), cont(F2))],
    expect: { events: [echoText(F1 + F2)], close: cleanClose() },
  },
  {
    id: '5.6',
    description: 'Send text message fragmented into 2 fragments, one ping with payload in-between',
    steps: [send(text(F1, { fin: false }), ping(PING), cont(F2))],
    expect: { events: [pongOf(PING), echoText(F1 + F2)], close: cleanClose() },
  },
  {
    id: '5.7',
    description: 'Same as 5.6, frame-wise writes',
    steps: sendSync(text(F1, { fin: false }), ping(PING), cont(F2)),
    expect: { events: [pongOf(PING), echoText(F1 + F2)], close: cleanClose() },
  },
  {
    id: '5.8',
    description: 'Send text message fragmented into 2 fragments, one ping with payload in-between, octet-wise chops',
    steps: [sendChopped(1, 0, text(F1, { fin: false }), ping(PING), cont(F2))],
    expect: { events: [pongOf(PING), echoText(F1 + F2)], close: cleanClose() },
  },
  orphan('5.9', true, 'whole'),
  orphan('5.10', true, 'frames'),
  orphan('5.11', true, 'octets'),
  orphan('5.12', false, 'whole'),
  orphan('5.13', false, 'frames'),
  orphan('5.14', false, 'octets'),
  {
    id: '5.15',
    description: 'Send text message in 2 fragments, then continuation frame with FIN = false where there is nothing to continue, then unfragmented text message',
    steps: [send(text(F1, { fin: false }), cont(F2), cont('fragment3', { fin: false }), text('fragment4'))],
    expect: { events: [echoText(F1 + F2)], close: fails([1002]) },
  },
  {
    id: '5.16',
    description: 'Repeated 2x: continuation frame with FIN = false (nothing to continue), then text fragment, then continuation with FIN = true',
    steps: [send(cont(F1, { fin: false }), text(F2, { fin: false }), cont('fragment3'), cont(F1, { fin: false }), text(F2, { fin: false }), cont('fragment3'))],
    expect: { events: [], close: fails([1002]) },
  },
  {
    id: '5.17',
    description: 'Repeated 2x: continuation frame with FIN = true (nothing to continue), then text fragment, then continuation with FIN = true',
    steps: [send(cont(F1), text(F2, { fin: false }), cont('fragment3'), cont(F1), text(F2, { fin: false }), cont('fragment3'))],
    expect: { events: [], close: fails([1002]) },
  },
  {
    id: '5.18',
    description: 'Send text message fragmented into 2 fragments, with both frame opcodes set to text',
    steps: [send(text(F1, { fin: false }), text(F2))],
    expect: { events: [], close: fails([1002]) },
  },
  case519('5.19', false),
  case519('5.20', true),
  // lifeline
  {
    id: '5.21',
    description: 'Binary message in 10 frames of 1 byte each',
    steps: [send(...Array.from({ length: 10 }, (_, i) => (i === 0 ? binary : cont)(Buffer.from([i]), { fin: i === 9 })))],
    expect: { events: [echoBinary(Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]))], close: cleanClose() },
  },
  {
    id: '5.22',
    description: 'Close frame with FIN = false (fragmented control frame)',
    steps: [send(close(1000, '', { fin: false }), cont(''))],
    expect: { events: [], close: fails([1002]) },
  },
  {
    id: '5.23',
    description: 'Fragmented text message with an unsolicited pong in-between: the pong is ignored, the message echoed',
    steps: [send(text(F1, { fin: false }), pong('unsolicited'), cont(F2))],
    expect: { events: [echoText(F1 + F2)], close: cleanClose() },
  },
  {
    id: '5.24',
    description: 'Fragmented text message interrupted by a binary frame',
    steps: [send(text(F1, { fin: false }), binary(F2))],
    expect: { events: [], close: fails([1002]) },
  },
  {
    id: '5.25',
    description: 'Binary message whose first and last fragments are empty',
    steps: [send(binary('', { fin: false }), cont('abc', { fin: false }), cont(''))],
    expect: { events: [echoBinary('abc')], close: cleanClose() },
  },
  {
    id: '5.26',
    description: 'Binary message of 3 x 64 KiB fragments with a ping after each of the first two: pongs come before the echo',
    steps: [send(binary(filled(65536, 1), { fin: false }), ping('p1'), cont(filled(65536, 2), { fin: false }), ping('p2'), cont(filled(65536, 3)))],
    expect: { events: [pongOf('p1'), pongOf('p2'), echoBinary(Buffer.concat([filled(65536, 1), filled(65536, 2), filled(65536, 3)]))], close: cleanClose() },
  },
];

export const fragmentation: Group = {
  id: '5',
  title: 'Fragmentation',
  covers: 'fragmented control frames, pings interleaved, continuation without start, text during a fragmented message, empty fragments, frame-/octet-wise chops',
  cases,
};
