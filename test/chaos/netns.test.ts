// Real packet loss (root only): LossyLink puts a tiny TCP echo server and its
// client (node child processes) in a private network namespace, on its own
// loopback, and drops packets there with nftables.
//
// Echo flows; dropAll(port) silences the connection without closing it (no RST,
// no FIN: the client sees nothing at all); clear() lets the same connection
// flow again once TCP retransmits. dropShare(50) drops about half of 200 UDP
// datagrams, and exactly as many as its nftables counter says; TCP under
// dropShare(20) still delivers every echo in order (retransmits hide the loss)
// while the counter shows packets were lost. destroy() kills the processes and
// deletes the namespace.

import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';

import { LossyLink, netnsAvailable } from '../helpers/netns.js';
import { ms, skipUnless, withTimeout } from '../helpers/peers.js';

const available = await netnsAvailable();

// ------------------------------------------------------------------ child scripts (plain CommonJS for node -e)

const TCP_ECHO_SERVER = `
const net = require('net');
const server = net.createServer((c) => { c.on('error', () => {}); c.pipe(c); });
server.listen(0, '127.0.0.1', () => console.log('listening ' + server.address().port));
`;

/** argv[1] = port. Each stdin line goes out; each echoed line is printed as 'echo <line>'. */
const TCP_ECHO_CLIENT = `
const net = require('net');
const readline = require('readline');
const c = net.connect(Number(process.argv[1]), '127.0.0.1', () => console.log('connected'));
let buf = '';
c.setEncoding('utf8');
c.on('data', (d) => {
  buf += d;
  for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) {
    console.log('echo ' + buf.slice(0, i));
    buf = buf.slice(i + 1);
  }
});
c.on('error', (e) => console.log('error ' + e.code));
c.on('close', () => console.log('closed'));
readline.createInterface({ input: process.stdin }).on('line', (l) => c.write(l + '\\n'));
`;

const UDP_COUNTER = `
const dgram = require('dgram');
const s = dgram.createSocket('udp4');
let n = 0;
s.on('message', () => console.log('got ' + ++n));
s.bind(0, '127.0.0.1', () => console.log('listening ' + s.address().port));
`;

/** argv[1] = port, argv[2] = count: sends count datagrams one after another, prints 'sent', exits. */
const UDP_SENDER = `
const dgram = require('dgram');
const s = dgram.createSocket('udp4');
const port = Number(process.argv[1]);
const count = Number(process.argv[2]);
let i = 0;
const next = (err) => {
  if (err) { console.log('error ' + err.code); process.exit(1); }
  if (i === count) { console.log('sent'); s.close(); return; }
  s.send(Buffer.from('datagram ' + i++), port, '127.0.0.1', next);
};
next();
`;

// ------------------------------------------------------------------ helpers

/** Stdout of a child, line by line, with waits that never hang. */
class Lines {
  readonly lines: string[] = [];
  private cursor = 0;
  private partial = '';
  private listeners = new Set<() => void>();
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      this.partial += d;
      const parts = this.partial.split('\n');
      this.partial = parts.pop()!;
      this.lines.push(...parts);
      for (const l of [...this.listeners]) l();
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (stderr += d));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        if (stderr.trim()) console.error(`child stderr: ${stderr.trim()}`);
        resolve(code);
      }),
    );
  }

  /** The first line after the previous match that matches `re` (already printed or still to come). */
  next(re: RegExp, timeoutMs = ms(5000)): Promise<RegExpMatchArray> {
    const scan = (): RegExpMatchArray | null => {
      for (let i = this.cursor; i < this.lines.length; i++) {
        const m = this.lines[i]!.match(re);
        if (m) {
          this.cursor = i + 1;
          return m;
        }
      }
      return null;
    };
    const found = scan();
    if (found) return Promise.resolve(found);
    let listener!: () => void;
    const p = new Promise<RegExpMatchArray>((resolve) => {
      listener = () => {
        const m = scan();
        if (m) resolve(m);
      };
      this.listeners.add(listener);
    });
    return withTimeout(p, timeoutMs, `a line matching ${re} (have: ${JSON.stringify(this.lines.slice(-5))})`).finally(() =>
      this.listeners.delete(listener),
    );
  }

  /** Lines printed so far after the last match. */
  get unread(): string[] {
    return this.lines.slice(this.cursor);
  }
}

function node(link: LossyLink, script: string, ...args: string[]): Lines {
  return new Lines(link.exec(process.execPath, ['-e', script, ...args]));
}

// ------------------------------------------------------------------ tests

describe('LossyLink: real packet loss in a network namespace', skipUnless(available, 'network namespaces (root, ip, nft)'), () => {
  let link: LossyLink;

  before(async () => {
    link = await LossyLink.create();
  });

  after(async () => {
    await link?.destroy();
  });

  test('dropAll silences a TCP connection without closing it; clear() lets the same connection flow again', async () => {
    const server = node(link, TCP_ECHO_SERVER);
    const port = Number((await server.next(/^listening (\d+)$/))[1]);
    const client = node(link, TCP_ECHO_CLIENT, String(port));
    await client.next(/^connected$/);

    client.child.stdin!.write('one\n');
    await client.next(/^echo one$/);

    await link.dropAll(port);
    const t0 = performance.now();
    client.child.stdin!.write('two\n');
    // The assertion here is an absence, so it needs a window: nothing within 500 ms.
    await assert.rejects(client.next(/^echo two$/, ms(500)), /timed out/);
    assert.deepEqual(client.unread, [], 'the client saw something (an error or a close?) while packets were dropped');
    const dropped = await link.dropped();
    assert.ok(dropped.packets >= 1, `nothing was counted as dropped:\n${await link.ruleset()}`);

    await link.clear();
    await client.next(/^echo two$/, ms(5000)); // after TCP's next retransmission
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(seconds >= 0.5, `the echo took ${seconds.toFixed(2)} s, so the drop was not in force`);
    client.child.stdin!.write('three\n');
    await client.next(/^echo three$/);
    assert.deepEqual((await link.dropped()).packets, 0, 'clear() restarts the counters');
  });

  test('dropShare(50) drops about half of 200 UDP datagrams, exactly as many as its counter says', async () => {
    const COUNT = 200;
    const counter = node(link, UDP_COUNTER);
    const port = Number((await counter.next(/^listening (\d+)$/))[1]);
    await link.clear();
    await link.dropShare(port, 50, { protocol: 'udp', direction: 'up' });
    try {
      const sender = node(link, UDP_SENDER, String(port), String(COUNT));
      await sender.next(/^sent$/);
      assert.equal(await withTimeout(sender.exited, ms(5000), 'the sender to exit'), 0);
      const { packets } = await link.dropped();
      // Binomial(200, 0.5): mean 100, sd about 7; these bounds are 8 sd out.
      assert.ok(packets > 40 && packets < 160, `${packets} of ${COUNT} dropped at 50 %`);
      await counter.next(new RegExp(`^got ${COUNT - packets}$`), ms(5000));
      assert.ok(!counter.lines.includes(`got ${COUNT - packets + 1}`), 'more datagrams arrived than were not dropped');
    } finally {
      await link.clear();
    }
  });

  test('TCP under dropShare(20) still delivers every echo in order while packets are lost', async () => {
    const server = node(link, TCP_ECHO_SERVER);
    const port = Number((await server.next(/^listening (\d+)$/))[1]);
    const client = node(link, TCP_ECHO_CLIENT, String(port));
    await client.next(/^connected$/);
    await link.clear();
    await link.dropShare(port, 20, { protocol: 'tcp' });
    try {
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) {
        client.child.stdin!.write(`m${i}\n`);
        await client.next(new RegExp(`^echo m${i}$`), ms(10_000));
      }
      const seconds = (performance.now() - t0) / 1000;
      const { packets } = await link.dropped();
      // 20 round trips carry at least 40 packets: P(none dropped at 20 %) < 1e-4.
      assert.ok(packets >= 1, 'no packet was dropped');
      assert.deepEqual(
        client.lines.filter((l) => l.startsWith('echo m')),
        Array.from({ length: 20 }, (_, i) => `echo m${i}`),
      );
      assert.ok(!client.lines.some((l) => /^(error|closed)/.test(l)), `the connection failed: ${client.lines.join(', ')}`);
      console.log(`20 echoes at 20 % loss: ${seconds.toFixed(2)} s, ${packets} packets dropped`);
    } finally {
      await link.clear();
    }
  });

  test('destroy() kills what exec() started and deletes the namespace', async () => {
    const other = await LossyLink.create();
    const sleeper = node(other, 'setInterval(() => {}, 1000); console.log("up")');
    await sleeper.next(/^up$/);
    assert.match(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), new RegExp(`^${other.name}\\b`, 'm'));
    await withTimeout(Promise.all([other.destroy(), other.destroy()]), ms(5000), 'destroy()');
    assert.notEqual(await sleeper.exited, 0);
    assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), new RegExp(`^${other.name}\\b`, 'm'));
    assert.throws(() => other.exec('true'), /destroyed/);
  });
});
