/** 2.x Pings/Pongs (RFC 6455 5.5.2, 5.5.3): every ping answered with its payload, pongs never answered. */
import { cleanClose, fails, hex, ping, pong, pongOf, send, sendChopped, type Case, type Group } from '../harness.js';
import { filled } from './scale.js';

const BIN = hex('00 ff fe fd fc fb 00 ff');
const tenPayloads = Array.from({ length: 10 }, (_, i) => `payload-${i}`);

const cases: Case[] = [
  { id: '2.1', description: 'Send ping without payload', steps: [send(ping())], expect: { events: [pongOf()], close: cleanClose() } },
  { id: '2.2', description: 'Send ping with small text payload', steps: [send(ping('Hello, world!'))], expect: { events: [pongOf('Hello, world!')], close: cleanClose() } },
  { id: '2.3', description: 'Send ping with small binary (non UTF-8) payload', steps: [send(ping(BIN))], expect: { events: [pongOf(BIN)], close: cleanClose() } },
  { id: '2.4', description: 'Send ping with binary payload of 125 octets', steps: [send(ping(filled(125, 0xfe)))], expect: { events: [pongOf(filled(125, 0xfe))], close: cleanClose() } },
  {
    id: '2.5',
    description: 'Send ping with binary payload of 126 octets (control frames carry at most 125)',
    steps: [send(ping(filled(126, 0xfe)))],
    expect: { events: [], close: fails([1002]) },
  },
  {
    id: '2.6',
    description: 'Send ping with binary payload of 125 octets, sent in octet-wise chops',
    steps: [sendChopped(1, 0, ping(filled(125, 0xfe)))],
    expect: { events: [pongOf(filled(125, 0xfe))], close: cleanClose() },
  },
  { id: '2.7', description: 'Send unsolicited pong without payload', steps: [send(pong())], expect: { events: [], close: cleanClose() } },
  { id: '2.8', description: 'Send unsolicited pong with payload', steps: [send(pong('unsolicited pong payload'))], expect: { events: [], close: cleanClose() } },
  {
    id: '2.9',
    description: 'Send unsolicited pong with payload, then ping with payload',
    steps: [send(pong('unsolicited pong payload'), ping('ping payload'))],
    expect: { events: [pongOf('ping payload')], close: cleanClose() },
  },
  {
    id: '2.10',
    description: 'Send 10 pings with payload back to back',
    steps: [send(...tenPayloads.map((p) => ping(p)))],
    expect: { events: tenPayloads.map((p) => pongOf(p)), close: cleanClose() },
  },
  {
    id: '2.11',
    description: 'Send 10 pings with payload, in octet-wise chops',
    steps: [sendChopped(1, 0, ...tenPayloads.map((p) => ping(p)))],
    expect: { events: tenPayloads.map((p) => pongOf(p)), close: cleanClose() },
  },
];

export const pings: Group = {
  id: '2',
  title: 'Pings/Pongs',
  covers: 'ping payloads (empty, text, binary, 125 vs 126 bytes), chopped ping, unsolicited pongs, 10 pings in a row',
  cases,
};
