/** 4.x Opcodes (RFC 6455 5.2): reserved opcodes 3-7 and B-F fail the connection with 1002. */
import { echoText, fails, ping, send, text, type Case, type Group } from '../harness.js';

const HELLO = 'Hello, world!';
const PAYLOAD = 'reserved opcode payload';

function group(sub: 1 | 2, opcodes: number[], kind: string): Case[] {
  return opcodes.map((op, i): Case => {
    const n = i + 1;
    const frame = { opcode: op, payload: n === 1 || n === 3 ? '' : PAYLOAD };
    const afterValid = n >= 3;
    return {
      id: `4.${sub}.${n}`,
      description: afterValid
        ? `Send small text message, then frame with reserved ${kind} opcode = ${op}${frame.payload ? ' and non-empty payload' : ''}, then ping`
        : `Send frame with reserved ${kind} opcode = ${op}${frame.payload ? ' and non-empty payload' : ''}`,
      steps: [afterValid ? send(text(HELLO), frame, ping(HELLO)) : send(frame)],
      expect: { events: afterValid ? [echoText(HELLO)] : [], close: fails([1002]) },
    };
  });
}

export const opcodes: Group = {
  id: '4',
  title: 'Opcodes',
  covers: 'reserved non-control opcodes 3-7 and control opcodes B-F, alone and after a valid message',
  cases: [...group(1, [3, 4, 5, 6, 7], 'non-control'), ...group(2, [11, 12, 13, 14, 15], 'control')],
};
