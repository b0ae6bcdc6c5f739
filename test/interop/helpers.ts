// Helpers shared by the interop suites (test/interop/*.test.ts): waiting on
// our sockets' events with a timeout, hashing payloads, and driving a peer
// that runs in a child process and talks JSON lines (test/interop/peers/).
//
// Every wait here has a timeout guard scaled by ms(); nothing sleeps to
// synchronise.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { ms, withTimeout } from '../helpers/peers.js';
import type { WebSocket } from '../../src/transport/node/websocket.js';

export const PEERS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'peers');

/** Non-ASCII text: 2-, 3- and 4-byte UTF-8 sequences. */
export const UNICODE_TEXT = 'héllo wörld ✓ 日本語 🚀 ¿qué tal? Ωμέγα';
export const MIB = 1024 * 1024;
export const BIG = 16 * MIB;

export function sha256(data: Buffer | Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Random bytes: incompressible, so deflate-on runs really stress the codec's buffers. */
export function randomPayload(size: number): Buffer {
  return randomBytes(size);
}

/** Compressible non-ASCII text of about `bytes` UTF-8 bytes (well above the 1 KiB deflate threshold). */
export function compressibleText(bytes: number): string {
  const unit = `${UNICODE_TEXT} | `;
  const unitBytes = Buffer.byteLength(unit);
  return unit.repeat(Math.ceil(bytes / unitBytes));
}

export interface CloseInfo {
  code: number;
  reason: string;
}

/** Resolves with ('close' code, reason) of one of our sockets. */
export function closeOf(ws: WebSocket, timeoutMs = ms(5000)): Promise<CloseInfo> {
  if (ws.readyState === 3) return Promise.reject(new Error('closeOf: the socket is already closed (subscribe before closing)'));
  return withTimeout(
    new Promise<CloseInfo>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason }))),
    timeoutMs,
    "our socket's 'close'",
  );
}

export interface Message {
  data: Buffer;
  isBinary: boolean;
}

/** Resolves with the next `count` messages of one of our sockets. */
export function messagesOf(ws: WebSocket, count: number, timeoutMs = ms(5000)): Promise<Message[]> {
  const got: Message[] = [];
  let onMessage!: (data: Buffer, isBinary: boolean) => void;
  let onClose!: (code: number, reason: string) => void;
  const p = new Promise<Message[]>((resolve, reject) => {
    onMessage = (data, isBinary) => {
      got.push({ data, isBinary });
      if (got.length === count) resolve(got);
    };
    onClose = (code, reason) => reject(new Error(`closed (${code} ${JSON.stringify(reason)}) after ${got.length} of ${count} messages`));
    ws.on('message', onMessage);
    ws.once('close', onClose);
  });
  return withTimeout(p, timeoutMs, `${count} message(s) (got ${got.length} so far)`).finally(() => {
    ws.off('message', onMessage);
    ws.off('close', onClose);
  });
}

export async function nextMessage(ws: WebSocket, timeoutMs = ms(5000)): Promise<Message> {
  return (await messagesOf(ws, 1, timeoutMs))[0]!;
}

/** Resolves with the payload of the next 'pong'. */
export function pongOf(ws: WebSocket, timeoutMs = ms(5000)): Promise<Buffer> {
  return withTimeout(new Promise<Buffer>((resolve) => ws.once('pong', resolve)), timeoutMs, "our socket's 'pong'");
}

/** Resolves with the first 'error' our socket reports (it only emits when a listener exists). */
export function errorOf(ws: WebSocket, timeoutMs = ms(5000)): Promise<Error & { code?: string; closeCode?: number }> {
  return withTimeout(new Promise((resolve) => ws.once('error', resolve)), timeoutMs, "our socket's 'error'");
}

// ---------------------------------------------------------------- child peers

export type PeerEvent = { event: string; id?: number } & Record<string, unknown>;

/**
 * A peer in a child process: JSON commands in on stdin, JSON events out on
 * stdout, one per line. Lines that are not JSON objects are kept as log.
 */
export class JsonLinePeer {
  readonly child: ChildProcessWithoutNullStreams;
  private readonly events: PeerEvent[] = [];
  private readonly consumed = new Set<PeerEvent>();
  private readonly waiters = new Set<() => void>();
  private stdoutRest = '';
  private stderrTail = '';
  private exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly exitPromise: Promise<void>;

  constructor(command: string, args: string[], readonly name: string) {
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
    this.child.stdin.on('error', () => {
      // The peer may exit first; its exit is reported by waitFor().
    });
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => this.onStdout(chunk));
    this.child.stderr.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-8000);
    });
    this.exitPromise = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exited = { code, signal };
        this.wake();
        resolve();
      });
      this.child.once('error', (err) => {
        this.stderrTail += `\nspawn error: ${err.message}`;
        this.exited = { code: null, signal: null };
        this.wake();
        resolve();
      });
    });
  }

  private onStdout(chunk: string): void {
    const text = this.stdoutRest + chunk;
    const lines = text.split('\n');
    this.stdoutRest = lines.pop() ?? '';
    for (const line of lines) {
      const trimmed = line.trim();
      if (!trimmed) continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(trimmed);
      } catch {
        this.stderrTail = (this.stderrTail + `\n[stdout] ${trimmed}`).slice(-8000);
        continue;
      }
      if (parsed && typeof parsed === 'object' && typeof (parsed as PeerEvent).event === 'string') this.events.push(parsed as PeerEvent);
    }
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Everything the peer reported so far (for assertion messages). */
  get log(): PeerEvent[] {
    return [...this.events];
  }

  get stderr(): string {
    return this.stderrTail;
  }

  /** Sends one command line to the peer's stdin. */
  send(command: Record<string, unknown>): void {
    this.child.stdin.write(`${JSON.stringify(command)}\n`);
  }

  /**
   * Resolves with the first not-yet-consumed event matching `match` (an event
   * name, or a predicate) and marks it consumed; rejects after `timeoutMs` or
   * when the peer exits first, quoting its stderr.
   */
  waitFor(match: string | ((e: PeerEvent) => boolean), what: string, timeoutMs = ms(5000)): Promise<PeerEvent> {
    const pred = typeof match === 'string' ? (e: PeerEvent) => e.event === match : match;
    return new Promise<PeerEvent>((resolve, reject) => {
      const check = () => {
        const hit = this.events.find((e) => !this.consumed.has(e) && pred(e));
        if (hit) {
          this.consumed.add(hit);
          done();
          resolve(hit);
          return;
        }
        if (this.exited) {
          done();
          reject(new Error(`${this.name} exited (code ${this.exited.code}, signal ${this.exited.signal}) while waiting for ${what}; stderr:\n${this.stderrTail}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${this.name}: ${what}; events so far: ${JSON.stringify(this.events.slice(-10)).slice(0, 2000)}; stderr:\n${this.stderrTail}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Event for connection `id` named `event` (and matching `extra`, if given). */
  waitForConn(id: number, event: string, timeoutMs = ms(5000), extra: (e: PeerEvent) => boolean = () => true): Promise<PeerEvent> {
    return this.waitFor((e) => e.id === id && e.event === event && extra(e), `'${event}' on connection ${id}`, timeoutMs);
  }

  /** Ends stdin (the peers exit on EOF), then SIGTERM, then SIGKILL; resolves once the process is gone. */
  async stop(timeoutMs = ms(3000)): Promise<void> {
    if (this.exited) return;
    this.child.stdin.end();
    const gone = await Promise.race([this.exitPromise.then(() => true), delay(timeoutMs).then(() => false)]);
    if (gone || this.exited) return;
    this.child.kill('SIGTERM');
    const gone2 = await Promise.race([this.exitPromise.then(() => true), delay(timeoutMs).then(() => false)]);
    if (gone2 || this.exited) return;
    this.child.kill('SIGKILL');
    await this.exitPromise;
  }
}

function delay(n: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, n);
    t.unref();
  });
}
