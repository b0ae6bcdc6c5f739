/** 3.x Reserved bits (RFC 6455 5.2): RSV1-3 set without a negotiated extension fail the connection with 1002. */
import { binary, close, cont, echoText, fails, hex, ping, pong, send, sendChopped, sendSync, text, type Case, type Group } from '../harness.js';

const HELLO = 'Hello, world!';

const cases: Case[] = [
  { id: '3.1', description: 'Send small text message with RSV = 1', steps: [send(text(HELLO, { rsv: 1 }))], expect: { events: [], close: fails([1002]) } },
  {
    id: '3.2',
    description: 'Send small text message, then send again with RSV = 2, then send ping',
    steps: [send(text(HELLO), text(HELLO, { rsv: 2 }), ping(HELLO))],
    expect: { events: [echoText(HELLO)], close: fails([1002]) },
  },
  {
    id: '3.3',
    description: 'Send small text message, then send again with RSV = 3, then send ping; frame-wise writes',
    steps: sendSync(text(HELLO), text(HELLO, { rsv: 3 }), ping(HELLO)),
    expect: { events: [echoText(HELLO)], close: fails([1002]) },
  },
  {
    id: '3.4',
    description: 'Send small text message, then send again with RSV = 4, then send ping; octet-wise chops',
    steps: [sendChopped(1, 0, text(HELLO), text(HELLO, { rsv: 4 }), ping(HELLO))],
    expect: { events: [echoText(HELLO)], close: fails([1002]) },
  },
  {
    id: '3.5',
    description: 'Send small binary message with RSV = 5',
    steps: [send(binary(hex('00 ff fe fd fc fb 00 ff'), { rsv: 5 }))],
    expect: { events: [], close: fails([1002]) },
  },
  { id: '3.6', description: 'Send ping with RSV = 6', steps: [send(ping(HELLO, { rsv: 6 }))], expect: { events: [], close: fails([1002]) } },
  { id: '3.7', description: 'Send close with RSV = 7', steps: [send(close(1000, '', { rsv: 7 }))], expect: { events: [], close: fails([1002]) } },
  // lifeline
  {
    id: '3.8',
    description: 'Fragmented text message whose continuation frame has RSV2 set (after a valid first fragment)',
    steps: [send(text('frag1', { fin: false }), cont('frag2', { rsv: 2 }))],
    expect: { events: [], close: fails([1002]) },
  },
  { id: '3.9', description: 'Send pong with RSV = 4 (RSV1 on a control frame)', steps: [send(pong(HELLO, { rsv: 4 }))], expect: { events: [], close: fails([1002]) } },
];

export const reserved: Group = {
  id: '3',
  title: 'Reserved bits',
  covers: 'RSV1-3 on text, binary, ping, pong, close and continuation frames, alone and after a valid message, whole/frame-wise/octet-wise',
  cases,
};
