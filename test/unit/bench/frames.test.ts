// bench/lib/frames.mjs bareNetUpgradeServer: the upgrade of scenario d's
// `net-ping-bare` floor, read off a bare node:net server. Over loopback: the
// 101 and its accept value (RFC 6455 4.2.2's example key), a head that comes
// in pieces, and the heads it drops; and `ws`, a client we did not write,
// opens a connection through it.

import net from 'node:net';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';

// @ts-expect-error: a plain .mjs module without type declarations
import { bareNetUpgradeServer } from '../../../bench/lib/frames.mjs';

const REQUEST = (key: string, upgrade = 'websocket') =>
  `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: ${upgrade}\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

describe('bareNetUpgradeServer', () => {
  const upgraded: net.Socket[] = [];
  let server: net.Server;
  let port = 0;

  before(async () => {
    server = bareNetUpgradeServer((s: net.Socket) => upgraded.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  after(async () => {
    for (const s of upgraded) s.destroy();
    await new Promise((r) => server.close(r));
  });

  /** Writes `parts` (one write each, the next after the server read the previous) and returns what came back before the server closed or answered. */
  async function exchange(parts: string[]): Promise<{ text: string; closed: boolean }> {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    await new Promise((r) => sock.once('connect', r));
    let text = '';
    const done = new Promise<{ text: string; closed: boolean }>((resolve) => {
      sock.on('data', (d) => {
        text += d.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve({ text, closed: false });
      });
      sock.on('close', () => resolve({ text, closed: true }));
      sock.on('error', () => {});
    });
    for (const p of parts) {
      sock.write(p);
      // Separate reads on the server: one loop turn (its poll phase reads this piece) before the next write.
      await new Promise((r) => setImmediate(r));
    }
    const out = await done;
    sock.destroy();
    return out;
  }

  it("answers RFC 6455's example key with its accept value", async () => {
    const before = upgraded.length;
    const { text } = await exchange([REQUEST('dGhlIHNhbXBsZSBub25jZQ==')]);
    assert.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(text, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
    assert.equal(upgraded.length, before + 1);
  });

  it('reads a head that arrives in pieces', async () => {
    const req = REQUEST('dGhlIHNhbXBsZSBub25jZQ==');
    const { text } = await exchange([req.slice(0, 7), req.slice(7, 60), req.slice(60)]);
    assert.match(text, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
  });

  it('drops a head that does not ask for a websocket upgrade, or has no key', async () => {
    const before = upgraded.length;
    const h2c = await exchange([REQUEST('dGhlIHNhbXBsZSBub25jZQ==', 'h2c')]);
    assert.deepEqual(h2c, { text: '', closed: true });
    const noKey = await exchange(['GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n']);
    assert.deepEqual(noKey, { text: '', closed: true });
    assert.equal(upgraded.length, before);
  });

  it('drops a connection whose head grows past 8 KiB without ending', async () => {
    const { text, closed } = await exchange(['GET / HTTP/1.1\r\n', `X-Pad: ${'a'.repeat(9000)}\r\n`]);
    assert.equal(text, '');
    assert.equal(closed, true);
  });

  it('lets a ws client open a connection and read a frame the server writes', async () => {
    const client = new WebSocket(`ws://127.0.0.1:${port}/`);
    const opened = new Promise((r, j) => client.once('open', r).once('error', j));
    await opened;
    const sock = upgraded[upgraded.length - 1]!;
    const got = new Promise<string>((r) => client.once('message', (d) => r(String(d))));
    sock.write(Buffer.from([0x81, 0x02, 0x68, 0x69])); // text "hi", unmasked: a server frame
    assert.equal(await got, 'hi');
    client.terminate();
  });
});
