/**
 * 6.x UTF-8 handling (RFC 6455 8.1, RFC 3629): valid text is echoed, invalid
 * text fails the connection with 1007, and fails it fast: as soon as the first
 * invalid byte arrives, not at the end of the frame or message (6.4.x).
 *
 * 6.5-6.23 are the test vectors Autobahn takes from Markus Kuhn's
 * UTF-8-test.txt, each sent as one text frame. Noncharacters (U+FFFE, U+FFFF,
 * U+nFFFE/nFFFF) are valid UTF-8. 6.24 (lifeline) splits a few strings into
 * two fragments at every byte offset; 6.4.5+ (lifeline) fail fast on each
 * class of invalid byte.
 */
import { isUtf8 } from 'node:buffer';
import {
  cleanClose,
  cont,
  echoText,
  fails,
  hex,
  send,
  text,
  type Case,
  type Group,
} from '../harness.js';

const KOSME = hex('ce ba e1 bd b9 cf 83 ce bc ce b5'); // κόσμε
const HELLO_UTF8 = Buffer.from('Hello-µ@ßöäüàá-UTF-8!!', 'utf8');
const INVALID_63 = Buffer.concat([KOSME, hex('ed a0 80'), Buffer.from('edited')]); // 6.3.x: surrogate U+D800 inside
const P641 = [KOSME, hex('f4 90 80 80'), Buffer.from('edited')]; // 6.4.x parts
const P64 = Buffer.concat(P641);

function valid(id: string, payload: Buffer, description: string): Case {
  return { id, description, steps: [send(text(payload))], expect: { events: [echoText(payload)], close: cleanClose() } };
}
function invalid(id: string, payload: Buffer, description: string): Case {
  return { id, description, steps: [send(text(payload))], expect: { events: [], close: fails([1007]) } };
}

/** Every byte as its own frame (text + continuations). */
function octetFrames(payload: Buffer) {
  return Array.from(payload, (b, i) => (i === 0 ? text : cont)(Buffer.from([b]), { fin: i === payload.length - 1 }));
}

// --- 6.1 - 6.4

const basics: Case[] = [
  valid('6.1.1', Buffer.alloc(0), 'Send text message of length 0'),
  {
    id: '6.1.2',
    description: 'Send fragmented text message, 3 fragments each of length 0',
    steps: [send(text('', { fin: false }), cont('', { fin: false }), cont(''))],
    expect: { events: [echoText('')], close: cleanClose() },
  },
  {
    id: '6.1.3',
    description: 'Send fragmented text message, 3 fragments, first and last of length 0, middle non-empty',
    steps: [send(text('', { fin: false }), cont('middle frame payload', { fin: false }), cont(''))],
    expect: { events: [echoText('middle frame payload')], close: cleanClose() },
  },
  valid('6.2.1', HELLO_UTF8, 'Send a valid UTF-8 text message in one fragment'),
  {
    id: '6.2.2',
    description: 'Send a valid UTF-8 text message in two fragments, fragmented on UTF-8 code point boundary',
    steps: [send(text(HELLO_UTF8.subarray(0, 12), { fin: false }), cont(HELLO_UTF8.subarray(12)))],
    expect: { events: [echoText(HELLO_UTF8)], close: cleanClose() },
  },
  {
    id: '6.2.3',
    description: 'Send a valid UTF-8 text message in fragments of 1 octet, resulting in frames ending on positions which are not code point ends',
    steps: [send(...octetFrames(HELLO_UTF8))],
    expect: { events: [echoText(HELLO_UTF8)], close: cleanClose() },
  },
  {
    id: '6.2.4',
    description: 'Send a valid UTF-8 text message (κόσμε) in fragments of 1 octet',
    steps: [send(...octetFrames(KOSME))],
    expect: { events: [echoText(KOSME)], close: cleanClose() },
  },
  invalid('6.3.1', INVALID_63, 'Send invalid UTF-8 text message unfragmented (κόσμε + U+D800 surrogate + "edited")'),
  {
    id: '6.3.2',
    description: 'Send invalid UTF-8 text message in fragments of 1 octet',
    steps: [send(...octetFrames(INVALID_63))],
    expect: { events: [], close: fails([1007]) },
  },
  {
    id: '6.4.1',
    description: 'Invalid UTF-8 in 3 frames: valid part 1, then part 2 (F4 90 80 80, beyond U+10FFFF) must be failed at once, before part 3 is sent',
    steps: [
      send(text(P641[0]!, { fin: false })),
      { op: 'expectOpen', ms: 30 },
      send(cont(P641[1]!, { fin: false })),
      { op: 'expectFail', codes: [1007] },
      send(cont(P641[2]!)),
    ],
    expect: { events: [], close: fails([1007]) },
  },
  {
    id: '6.4.2',
    description: 'Same as 6.4.1, but frame 2 is only the byte that makes the payload invalid (frame 1 ends with F4, frame 2 is 90)',
    steps: [
      send(text(P64.subarray(0, 12), { fin: false })),
      { op: 'expectOpen', ms: 30 },
      send(cont(P64.subarray(12, 13), { fin: false })),
      { op: 'expectFail', codes: [1007] },
      send(cont(P64.subarray(13))),
    ],
    expect: { events: [], close: fails([1007]) },
  },
  {
    id: '6.4.3',
    description: 'Same as 6.4.1 but one frame in 3 chops: the connection must fail after chop 2, while chop 3 is still withheld',
    steps: [{ op: 'sendSplit', frame: text(P64), at: [11, 15], delayMs: 30, after: { 0: 'open', 1: { fail: [1007] } } }],
    expect: { events: [], close: fails([1007]) },
  },
  {
    id: '6.4.4',
    description: 'Same as 6.4.2 but one frame in 3 chops: chop 1 ends with F4, chop 2 is the invalid 90, chop 3 is withheld',
    steps: [{ op: 'sendSplit', frame: text(P64), at: [12, 13], delayMs: 30, after: { 0: 'open', 1: { fail: [1007] } } }],
    expect: { events: [], close: fails([1007]) },
  },
];

// --- 6.4.5+ (lifeline): fail fast on every class of invalid byte, in the middle of a frame

const TAIL = Buffer.alloc(64, 'z');
const failFastClasses: Array<[string, Buffer, number]> = [
  // [what, bytes, index of the first byte that makes it invalid]
  ['lone continuation byte 80', hex('80'), 0],
  ['overlong 2-byte lead C0', hex('c0 af'), 0],
  ['overlong 3-byte E0 80', hex('e0 80 af'), 1],
  ['overlong 4-byte F0 8F', hex('f0 8f bf bf'), 1],
  ['UTF-16 surrogate ED A0', hex('ed a0 80'), 1],
  ['code point beyond U+10FFFF (F4 90)', hex('f4 90 80 80'), 1],
  ['lead byte F5', hex('f5 80 80 80'), 0],
  ['impossible byte FE', hex('fe'), 0],
  ['impossible byte FF', hex('ff'), 0],
  ['2-byte sequence cut short by ASCII (CE 41)', hex('ce 41'), 1],
  ['3-byte sequence cut short by ASCII (E1 BD 78)', hex('e1 bd 78'), 2],
  ['4-byte sequence cut short by ASCII (F0 90 80 78)', hex('f0 90 80 78'), 3],
];

const failFast: Case[] = failFastClasses.map(([what, bad, k], i): Case => {
  const prefix = Buffer.from('fail fast: ');
  const payload = Buffer.concat([prefix, bad, TAIL]);
  const at = prefix.length + k;
  return {
    id: `6.4.${5 + i}`,
    description: `Fail fast on ${what}: one text frame, the chop before the invalid byte keeps the connection open, the chop ending with it fails it while ${payload.length - at - 1} payload bytes are withheld`,
    steps: [{ op: 'sendSplit', frame: text(payload), at: [at, at + 1], delayMs: 20, after: { 0: 'open', 1: { fail: [1007] } } }],
    expect: { events: [], close: fails([1007]) },
  };
});
{
  const n = failFast.length;
  const big = Buffer.concat([Buffer.alloc(1000, 'a'), hex('ed a0 80'), Buffer.alloc(65536 - 1003, 'b')]);
  failFast.push(
    {
      id: `6.4.${5 + n}`,
      description: 'Fail fast across frames: fragment 1 ends with E0, fragment 2 starts with the invalid 80 and the rest of fragment 2 is withheld',
      steps: [
        send(text(Buffer.from('abc\xe0', 'latin1'), { fin: false })),
        { op: 'expectOpen', ms: 20 },
        { op: 'sendSplit', frame: cont(Buffer.concat([hex('80 80'), TAIL])), at: [1], after: { 0: { fail: [1007] } } },
      ],
      expect: { events: [], close: fails([1007]) },
    },
    {
      id: `6.4.${6 + n}`,
      description: 'Fail fast in a 64 KiB text frame: surrogate at offset 1000, the remaining 64 KiB never sent',
      steps: [{ op: 'sendSplit', frame: text(big), at: [1001, 1002], delayMs: 20, after: { 0: 'open', 1: { fail: [1007] } } }],
      expect: { events: [], close: fails([1007]) },
    },
    {
      id: `6.4.${7 + n}`,
      description: 'Fail fast in a fragmented message: valid 4 KiB fragment, then a fragment whose 10th byte is invalid, the rest withheld',
      steps: [
        send(text(Buffer.alloc(4096, 'v'), { fin: false })),
        { op: 'sendSplit', frame: cont(Buffer.concat([Buffer.alloc(9, 'w'), hex('ff'), TAIL])), at: [9, 10], delayMs: 20, after: { 0: 'open', 1: { fail: [1007] } } },
      ],
      expect: { events: [], close: fails([1007]) },
    },
  );
}

// --- 6.5 - 6.23: Autobahn's vectors from UTF-8-test.txt

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

const noncharacters: Buffer[] = [hex('ef bf be'), hex('ef bf bf')];
for (const z1 of [0xf0, 0xf1, 0xf2, 0xf3, 0xf4]) {
  for (const z2 of [0x8f, 0x9f, 0xaf, 0xbf]) {
    if (z1 === 0xf4 && z2 !== 0x8f) continue; // beyond U+10FFFF
    if (z1 === 0xf0 && z2 === 0x8f) continue; // overlong
    for (const z3 of [0xbe, 0xbf]) noncharacters.push(Buffer.from([z1, z2, 0xbf, z3]));
  }
}
const missingLast = ['c0', 'e0 80', 'f0 80 80', 'f8 80 80 80', 'fc 80 80 80 80', 'df', 'ef bf', 'f7 bf bf', 'fb bf bf bf', 'fd bf bf bf bf'].map(hex);

const VECTORS: Array<[string, Array<[boolean, Buffer]>]> = [
  [
    'Some valid UTF-8 sequences',
    [
      [true, Buffer.from('hello\x24world', 'latin1')],
      [true, Buffer.concat([Buffer.from('hello'), hex('c2 a2'), Buffer.from('world')])],
      [true, Buffer.concat([Buffer.from('hello'), hex('e2 82 ac'), Buffer.from('world')])],
      [true, Buffer.concat([Buffer.from('hello'), hex('f0 a4 ad a2'), Buffer.from('world')])],
      [true, KOSME],
    ],
  ],
  [
    'All prefixes of a valid UTF-8 string that contains multi-byte code points',
    // κόσμε cut after every byte: complete at 2, 5, 7, 9, 11 bytes.
    range(1, KOSME.length + 1).map((n) => [[2, 5, 7, 9, 11].includes(n), KOSME.subarray(0, n)]),
  ],
  ['First possible sequence of a certain length', ['00', 'c2 80', 'e0 a0 80', 'f0 90 80 80'].map((h) => [true, hex(h)])],
  ['First possible sequence length 5/6 (invalid codepoints)', ['f8 88 80 80 80', 'fc 84 80 80 80 80'].map((h) => [false, hex(h)])],
  ['Last possible sequence of a certain length', ['7f', 'df bf', 'ef bf bf', 'f4 8f bf bf'].map((h) => [true, hex(h)])],
  ['Last possible sequence length 4/5/6 (invalid codepoints)', ['f7 bf bf bf', 'fb bf bf bf bf', 'fd bf bf bf bf bf'].map((h) => [false, hex(h)])],
  [
    'Other boundary conditions',
    [
      [true, hex('ed 9f bf')],
      [true, hex('ee 80 80')],
      [true, hex('ef bf bd')],
      [true, hex('f4 8f bf bf')],
      [false, hex('f4 90 80 80')],
    ],
  ],
  [
    'Unexpected continuation bytes',
    [
      ...['80', 'bf', '80 bf', '80 bf 80', '80 bf 80 bf', '80 bf 80 bf 80', '80 bf 80 bf 80 bf'].map((h): [boolean, Buffer] => [false, hex(h)]),
      [false, Buffer.from(range(0x80, 0xbf))],
    ],
  ],
  [
    'Lonely start characters',
    [
      [0xc0, 0xdf],
      [0xe0, 0xef],
      [0xf0, 0xf7],
      [0xf8, 0xfb],
      [0xfc, 0xfd],
    ].map(([a, b]): [boolean, Buffer] => [false, Buffer.from(range(a!, b!).flatMap((c) => [c, 0x20]))]),
  ],
  ['Sequences with last continuation byte missing', missingLast.map((b) => [false, b])],
  ['Concatenation of incomplete sequences', [[false, Buffer.concat(missingLast)]]],
  ['Impossible bytes', ['fe', 'ff', 'fe fe ff ff'].map((h) => [false, hex(h)])],
  ['Examples of an overlong ASCII character', ['c0 af', 'e0 80 af', 'f0 80 80 af', 'f8 80 80 80 af', 'fc 80 80 80 80 af'].map((h) => [false, hex(h)])],
  ['Maximum overlong sequences', ['c1 bf', 'e0 9f bf', 'f0 8f bf bf', 'f8 87 bf bf bf', 'fc 83 bf bf bf bf'].map((h) => [false, hex(h)])],
  ['Overlong representation of the NUL character', ['c0 80', 'e0 80 80', 'f0 80 80 80', 'f8 80 80 80 80', 'fc 80 80 80 80 80'].map((h) => [false, hex(h)])],
  ['Single UTF-16 surrogates', ['ed a0 80', 'ed ad bf', 'ed ae 80', 'ed af bf', 'ed b0 80', 'ed be 80', 'ed bf bf'].map((h) => [false, hex(h)])],
  [
    'Paired UTF-16 surrogates',
    ['ed a0 80 ed b0 80', 'ed a0 80 ed bf bf', 'ed ad bf ed b0 80', 'ed ad bf ed bf bf', 'ed ae 80 ed b0 80', 'ed ae 80 ed bf bf', 'ed af bf ed b0 80', 'ed af bf ed bf bf'].map((h) => [
      false,
      hex(h),
    ]),
  ],
  ['Non-character code points (valid UTF-8)', noncharacters.map((b) => [true, b])],
  ['Unicode specials (i.e. replacement char)', ['ef bf b9', 'ef bf ba', 'ef bf bb', 'ef bf bc', 'ef bf bd', 'ef bf be', 'ef bf bf'].map((h) => [true, hex(h)])],
];

const vectors: Case[] = VECTORS.flatMap(([title, list], gi) =>
  list.map(([ok, payload], i) => {
    const id = `6.${5 + gi}.${i + 1}`;
    const d = `${title}: text message with payload 0x${payload.toString('hex')} in one frame (${ok ? 'valid' : 'invalid'} UTF-8)`;
    return ok ? valid(id, payload, d) : invalid(id, payload, d);
  }),
);

// --- 6.24 (lifeline): two fragments, split at every byte offset

const SPLIT_STRINGS: Array<[string, Buffer]> = [
  ['"Hello-µ@ßöäüàá-UTF-8!!"', HELLO_UTF8],
  ['κόσμε', KOSME],
  ['"a𝄞€ß" (4-, 3- and 2-byte code points)', Buffer.from('a𝄞€ß', 'utf8')],
  ['κόσμε + U+D800 + "edited" (invalid)', INVALID_63],
  ['"ab" + F4 90 80 80 + "cd" (invalid: beyond U+10FFFF)', Buffer.concat([Buffer.from('ab'), hex('f4 90 80 80'), Buffer.from('cd')])],
  ['"ab" + E1 BD (invalid: message ends inside a code point)', Buffer.concat([Buffer.from('ab'), hex('e1 bd')])],
];

const splits: Case[] = [];
for (const [name, payload] of SPLIT_STRINGS) {
  const ok = isUtf8(payload);
  for (let at = 1; at < payload.length; at++) {
    splits.push({
      id: `6.24.${splits.length + 1}`,
      description: `${name} as two text fragments split after byte ${at} of ${payload.length}`,
      steps: [send(text(payload.subarray(0, at), { fin: false }), cont(payload.subarray(at)))],
      expect: ok ? { events: [echoText(payload)], close: cleanClose() } : { events: [], close: fails([1007]) },
    });
  }
}

export const utf8: Group = {
  id: '6',
  title: 'UTF-8 handling',
  covers:
    'empty/fragmented text, Autobahn\'s UTF-8-test.txt vectors (overlongs, surrogates, > U+10FFFF, stray continuations, truncated sequences, noncharacters valid), every split point, strict fail-fast',
  cases: [...basics, ...failFast, ...vectors, ...splits],
};
