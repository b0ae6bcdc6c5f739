/**
 * 7.x Close handling (RFC 6455 5.5.1, 7.1-7.4): the closing handshake, data
 * after close ignored, close payload rules, valid and invalid status codes.
 *
 * Our choice where Autobahn accepts several answers: a valid close code is
 * echoed (Autobahn also accepts 1000); a close frame without status is
 * answered with a close frame without status (1005 here).
 */
import { cleanClose, close, closePayload, cont, echoText, fails, hex, ping, send, text, type Case, type Group } from '../harness.js';
import { filled } from './scale.js';

const HELLO = 'Hello World!';

const basics: Case[] = [
  { id: '7.1.1', description: 'Send a message followed by a close frame', steps: [send(text(HELLO), close(1000))], expect: { events: [echoText(HELLO)], close: cleanClose() } },
  { id: '7.1.2', description: 'Send two close frames', steps: [send(close(1000), close(1000))], expect: { events: [], close: cleanClose() } },
  { id: '7.1.3', description: 'Send a ping after close message', steps: [send(close(1000), ping(HELLO))], expect: { events: [], close: cleanClose() } },
  { id: '7.1.4', description: 'Send text message after sending a close frame', steps: [send(close(1000), text(HELLO))], expect: { events: [], close: cleanClose() } },
  {
    id: '7.1.5',
    description: 'Send message fragment 1, then close, then fragment 2',
    steps: [send(text('fragment1', { fin: false }), close(1000), cont('fragment2'))],
    expect: { events: [], close: cleanClose() },
  },
  {
    id: '7.1.6',
    description: 'Send 256 KiB message, then a small message, then close, then a ping',
    note: 'Autobahn: INFORMATIONAL. Ours: both messages are echoed before the close answer, the ping after close is ignored.',
    steps: [send(text(filled(256 * 1024, 'BAsd7&jh23')), text('Hello World!'), close(1000), ping())],
    expect: { events: [echoText(filled(256 * 1024, 'BAsd7&jh23')), echoText('Hello World!')], close: cleanClose() },
  },
];

const payloads: Case[] = [
  {
    id: '7.3.1',
    description: 'Send a close frame with payload length 0 (no close code, no close reason)',
    note: 'Autobahn expects a clean close; we answer with a close frame without status code (echo).',
    steps: [send(close())],
    expect: { events: [], close: cleanClose([1005]) },
  },
  { id: '7.3.2', description: 'Send a close frame with payload length 1', steps: [send({ opcode: 0x8, payload: hex('00') })], expect: { events: [], close: fails([1002]) } },
  { id: '7.3.3', description: 'Send a close frame with payload length 2 (regular close with a code)', steps: [send(close(1000))], expect: { events: [], close: cleanClose() } },
  { id: '7.3.4', description: 'Send close with close code and close reason', steps: [send(close(1000, 'Hello World!'))], expect: { events: [], close: cleanClose() } },
  {
    id: '7.3.5',
    description: 'Send close with close code and close reason of maximum length (123)',
    steps: [send(close(1000, filled(123, 'x')))],
    expect: { events: [], close: cleanClose() },
  },
  {
    id: '7.3.6',
    description: 'Send close with close code and close reason which is too long (124): payload of 126 bytes',
    steps: [send(close(1000, filled(124, 'x')))],
    expect: { events: [], close: fails([1002]) },
  },
  {
    id: '7.5.1',
    description: 'Send a close frame with invalid UTF-8 reason',
    steps: [send({ opcode: 0x8, payload: closePayload(1000, hex('ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64')) })],
    expect: { events: [], close: fails([1007]) },
  },
];

// RFC 6455 7.4.1 and the IANA registry: 1000-1003, 1007-1014 and 3000-4999 may be sent.
const VALID = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999];
const VALID_LIFELINE = [1012, 1013, 1014];
const INVALID = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999];

const codes: Case[] = [
  ...[...VALID, ...VALID_LIFELINE].map(
    (code, i): Case => ({
      id: `7.7.${i + 1}`,
      description: `Send close with valid close code ${code}${i >= VALID.length ? ' (IANA-registered, lifeline)' : ''}`,
      note: 'Autobahn accepts 1000 or the echoed code; we echo the code.',
      steps: [send(close(code))],
      expect: { events: [], close: cleanClose([code]) },
    }),
  ),
  ...[...INVALID, 1015].map(
    (code, i): Case => ({
      id: `7.9.${i + 1}`,
      description: `Send close with invalid close code ${code}${code === 1015 ? ' (reserved: TLS handshake failure, never on the wire; lifeline)' : ''}`,
      steps: [send(close(code))],
      expect: { events: [], close: fails([1002]) },
    }),
  ),
  {
    id: '7.13.1',
    description: 'Send close with close code 5000 (out of range)',
    note: 'Autobahn: INFORMATIONAL. Ours: protocol error 1002.',
    steps: [send(close(5000))],
    expect: { events: [], close: fails([1002]) },
  },
  {
    id: '7.13.2',
    description: 'Send close with close code 65535 (out of range)',
    note: 'Autobahn: INFORMATIONAL. Ours: protocol error 1002.',
    steps: [send(close(65535))],
    expect: { events: [], close: fails([1002]) },
  },
];

export const closeHandling: Group = {
  id: '7',
  title: 'Close handling',
  covers: 'data after close ignored, double close, close payload 0/1/2/123+2/126 bytes, invalid UTF-8 reason, valid codes (incl. 1012-1014, 3000-4999) echoed, invalid codes (0, 999, 1004-1006, 1015, 1016, 2999, 5000, 65535) fail',
  cases: [...basics, ...payloads, ...codes],
};
