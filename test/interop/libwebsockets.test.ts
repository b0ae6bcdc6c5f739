// Interop: our client against Debian's libwebsockets-test-server (lws 4.1.6),
// bound to the loopback interface on a free port. Its protocols:
//  - lws-mirror-protocol: every message received from one client is sent to
//    all clients of the same mirror instance (`?mirror=NAME`), sender included.
//    It relays what its receive callback gets, chunk by chunk, always as TEXT
//    frames: long or fragmented messages come back as several text messages,
//    and binary comes back as text.
//  - dumb-increment-protocol: sends "0", "1", "2"... every 50 ms; "reset\n"
//    restarts at 0; "closeme\n" makes it close with 1001 "seeya".
// Offering permessage-deflate: lws declines it for both protocols (see the
// handshake tests), so "deflate on" here checks that we fall back cleanly.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, afterEach, before, describe, test } from 'node:test';

import { frame } from '../helpers/recording.js';
import { freePort, ms, peerAvailability, skipUnless, withTimeout } from '../helpers/peers.js';
import { ClientWebSocket, connect, type ClientOptions } from '../../src/transport/node/client.js';
import { BIG, UNICODE_TEXT, closeOf, errorOf, messagesOf, nextMessage, pongOf } from './helpers.js';

const peers = peerAvailability();
const MIRROR = 'lws-mirror-protocol';
const DUMB = 'dumb-increment-protocol';

interface LwsServer {
  proc: ChildProcess;
  port: number;
  stderr: () => string;
}

/**
 * Starts libwebsockets-test-server on a free port on the loopback interface
 * (-i lo) and resolves once it logged that it is operational (-d 15 includes
 * lws' info level, where that line is). Retries with another port if the one
 * picked was taken in the meantime.
 */
async function startLws(bin: string): Promise<LwsServer> {
  let lastError: Error | null = null;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const proc = spawn(bin, ['-p', String(port), '-i', 'lo', '-d', '15'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    proc.stdout!.resume(); // "Using resource path ..." on stdout: drain it
    proc.stderr!.setEncoding('utf8');
    const ready = new Promise<void>((resolve, reject) => {
      proc.stderr!.on('data', (chunk: string) => {
        log = (log + chunk).slice(-20_000);
        if (/-> OPERATIONAL/.test(log)) resolve();
      });
      proc.once('exit', (code, signal) => reject(new Error(`libwebsockets-test-server exited (code ${code}, signal ${signal}) before it was ready:\n${log}`)));
      proc.once('error', reject);
    });
    try {
      await withTimeout(ready, ms(10_000), 'libwebsockets-test-server to be operational');
      return { proc, port, stderr: () => log };
    } catch (err) {
      lastError = err as Error;
      await stopLws({ proc, port, stderr: () => log });
    }
  }
  throw lastError ?? new Error('libwebsockets-test-server did not start');
}

/** SIGINT (lws exits cleanly on it), then SIGKILL if it lingers. */
async function stopLws(lws: LwsServer | undefined): Promise<void> {
  if (!lws) return;
  const { proc } = lws;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGINT');
  try {
    await withTimeout(exited, ms(3000), 'libwebsockets-test-server to exit on SIGINT');
  } catch {
    proc.kill('SIGKILL');
    await withTimeout(exited, ms(3000), 'libwebsockets-test-server to exit on SIGKILL');
  }
}

describe('libwebsockets-test-server (lws 4.1.6) <- our client', skipUnless(peers.lwsTestServer !== null, 'libwebsockets-test-server'), () => {
  let lws: LwsServer;
  let mirrorSeq = 0;

  before(async () => {
    lws = await startLws(peers.lwsTestServer!);
  });
  after(async () => {
    await stopLws(lws);
  });

  for (const deflate of [false, true]) {
    describe(`permessage-deflate ${deflate ? 'offered' : 'not offered'} by our client`, () => {
      const opened: ClientWebSocket[] = [];
      afterEach(() => {
        for (const ws of opened.splice(0)) ws.terminate();
      });

      /** A client on a fresh mirror instance (or on `name`), so tests don't hear each other. */
      async function mirror(name = `t${++mirrorSeq}`, opts: ClientOptions = {}): Promise<ClientWebSocket> {
        const ws = await withTimeout(
          connect(`ws://127.0.0.1:${lws.port}/?mirror=${name}`, { protocols: [MIRROR], deflate, ...opts }),
          ms(5000),
          'our client to open a mirror connection',
        );
        opened.push(ws);
        return ws;
      }

      test(`handshake: lws selects ${MIRROR}${deflate ? ' and declines permessage-deflate; we run without it' : ''}`, async (t) => {
        const ws = await mirror();
        assert.equal(ws.protocol, MIRROR);
        t.diagnostic(`negotiated extensions: ${JSON.stringify(ws.extensions)}`);
        assert.equal(ws.extensions, '', 'the Debian lws 4.1.6 test server never accepts permessage-deflate for lws-mirror-protocol');
      });

      test(`handshake: lws selects ${DUMB}${deflate ? ' and declines permessage-deflate (rx buffer < 128)' : ''}`, async () => {
        const ws = await withTimeout(connect(`ws://127.0.0.1:${lws.port}/`, { protocols: [DUMB], deflate }), ms(5000), 'our client to open');
        opened.push(ws);
        assert.equal(ws.protocol, DUMB);
        assert.equal(ws.extensions, '');
      });

      test('a subprotocol lws does not serve: the handshake is refused', async () => {
        await assert.rejects(
          withTimeout(connect(`ws://127.0.0.1:${lws.port}/`, { protocols: ['no-such-protocol'], deflate }), ms(5000), 'our client to fail'),
          (err: Error & { code?: string }) => typeof err.code === 'string' && err.code.startsWith('WS_ERR_'),
        );
      });

      test('text with non-ASCII characters is mirrored to the sender and to a second client', async () => {
        const name = `t${++mirrorSeq}`;
        const a = await mirror(name);
        const b = await mirror(name);
        const atA = nextMessage(a);
        const atB = nextMessage(b);
        a.send(UNICODE_TEXT);
        for (const m of [await atA, await atB]) {
          assert.equal(m.isBinary, false);
          assert.equal(m.data.toString('utf8'), UNICODE_TEXT);
        }
      });

      test('many messages are mirrored in order', async () => {
        const ws = await mirror();
        const n = 100;
        const got = messagesOf(ws, n, ms(10_000));
        for (let i = 0; i < n; i++) ws.send(`m${i} ✓`);
        assert.deepEqual(
          (await got).map((m) => m.data.toString('utf8')),
          Array.from({ length: n }, (_, i) => `m${i} ✓`),
        );
      });

      test('a 16 MiB message goes out, and comes back as lws relays it: many text messages that add up to it', { timeout: ms(120_000) }, async () => {
        const ws = await mirror();
        // ASCII, so lws' re-chunking can never split a UTF-8 sequence.
        const unit = 'abcdefghijklmnopqrstuvwxyz0123456789';
        const big = Buffer.from(unit.repeat(Math.ceil(BIG / unit.length)).slice(0, BIG), 'latin1');
        const parts: Buffer[] = [];
        let total = 0;
        let onMessage!: (data: Buffer, isBinary: boolean) => void;
        const done = new Promise<void>((resolve, reject) => {
          onMessage = (data, isBinary) => {
            if (isBinary) reject(new Error('lws mirrored a binary frame; it only sends text'));
            parts.push(data);
            total += data.length;
            if (total >= BIG) resolve();
          };
          ws.on('message', onMessage);
          ws.once('close', (code, reason) => reject(new Error(`closed ${code} ${reason} after ${total} bytes`)));
        });
        ws.send(big, { binary: false });
        await withTimeout(done, ms(60_000), `16 MiB mirrored back (got ${total} bytes)`);
        ws.off('message', onMessage);
        assert.equal(total, BIG);
        assert.ok(Buffer.concat(parts).equals(big), 'the mirrored chunks concatenate to what we sent');
        assert.ok(parts.length > 1, 'lws relays in chunks of its receive buffer');
      });

      test('our fragmented text message reaches lws (it relays each fragment; they add up to the message)', async () => {
        const ws = await mirror();
        const fragments = ['frag-1 héllo ', 'frag-2 wörld ', 'frag-3 🚀'];
        const whole = fragments.join('');
        const parts: string[] = [];
        let onMessage!: (data: Buffer) => void;
        const done = new Promise<void>((resolve) => {
          onMessage = (data) => {
            parts.push(data.toString('utf8'));
            if (parts.join('').length >= whole.length) resolve();
          };
          ws.on('message', onMessage);
        });
        ws.sendFragments(fragments, { binary: false });
        await withTimeout(done, ms(5000), 'the fragments mirrored back');
        ws.off('message', onMessage);
        assert.equal(parts.join(''), whole);
      });

      test('binary that is valid UTF-8 comes back as a text message with the same bytes', async () => {
        const ws = await mirror();
        const got = nextMessage(ws);
        ws.send(Buffer.from('binary but ASCII', 'utf8'));
        const m = await got;
        assert.equal(m.isBinary, false, 'lws-mirror-protocol always writes LWS_WRITE_TEXT');
        assert.equal(m.data.toString('utf8'), 'binary but ASCII');
      });

      test('binary that is not UTF-8 comes back as an invalid text frame: we fail the connection with 1007', async () => {
        const ws = await mirror();
        const err = errorOf(ws);
        const closed = closeOf(ws);
        ws.send(Buffer.from([0x01, 0x02, 0xff, 0xfe]));
        const e = await err;
        assert.equal(e.code, 'WS_ERR_INVALID_UTF8');
        assert.equal(e.closeCode, 1007);
        await closed;
      });

      test('we ping, lws answers with a pong carrying the same payload', async () => {
        const ws = await mirror();
        const pong = pongOf(ws);
        ws.ping('lifeline-ping ✓');
        assert.equal((await pong).toString('utf8'), 'lifeline-ping ✓');
      });

      test('we close with 4002 "ciao ✓": lws echoes 4002 "ciao ✓" in its close frame', async () => {
        const ws = await mirror();
        const closed = closeOf(ws);
        ws.close(4002, 'ciao ✓');
        assert.deepEqual(await closed, { code: 4002, reason: 'ciao ✓' });
      });

      // After failing a connection lws sends its close frame and then waits for
      // ours, but it sometimes misses our (correct) reply and only drops TCP
      // after its own 5 s timeout (it appears to parse the rest of the bad
      // frame as a new header). RFC 6455 7.1.1: the client waits for the server
      // to close TCP, up to closeTimeout; a short one keeps these tests fast.
      test('we break the protocol (reserved opcode 0x3): lws closes with 1002', async () => {
        const ws = await mirror(undefined, { closeTimeout: ms(1000) });
        const closed = closeOf(ws);
        ws.rawSocket!.write(frame(0x3, 'reserved'));
        const c = await closed;
        assert.equal(c.code, 1002, `lws closed with ${c.code} ${JSON.stringify(c.reason)}`);
      });

      test('we break the protocol (RSV2 set, not negotiated): lws closes with 1002', async () => {
        const ws = await mirror(undefined, { closeTimeout: ms(1000) });
        const closed = closeOf(ws);
        ws.rawSocket!.write(frame(0x1, 'rsv2', { rsv: 2 }));
        const c = await closed;
        assert.equal(c.code, 1002, `lws closed with ${c.code} ${JSON.stringify(c.reason)}`);
      });

      test(`${DUMB}: increasing numbers; "reset\\n" restarts at 0; "closeme\\n" -> lws closes with 1001 "seeya"`, async () => {
        const ws = await withTimeout(connect(`ws://127.0.0.1:${lws.port}/`, { protocols: [DUMB], deflate }), ms(5000), 'our client to open');
        opened.push(ws);
        const first = (await messagesOf(ws, 5, ms(5000))).map((m) => Number(m.data.toString('utf8')));
        for (let i = 1; i < first.length; i++) assert.equal(first[i], first[i - 1]! + 1, `consecutive: ${first.join(',')}`);

        ws.send('reset\n');
        // Numbers already in flight may arrive before the reset takes effect: a bounded wait for "0".
        const afterReset: string[] = [];
        let onMessage!: (data: Buffer) => void;
        const sawZero = new Promise<void>((resolve, reject) => {
          onMessage = (data) => {
            afterReset.push(data.toString('utf8'));
            if (data.toString('utf8') === '0') resolve();
            else if (afterReset.length > 20) reject(new Error(`no "0" after reset: ${afterReset.join(',')}`));
          };
          ws.on('message', onMessage);
        });
        await withTimeout(sawZero, ms(5000), '"0" after reset');
        ws.off('message', onMessage);

        const closed = closeOf(ws);
        ws.send('closeme\n');
        assert.deepEqual(await closed, { code: 1001, reason: 'seeya' });
      });
    });
  }
});
