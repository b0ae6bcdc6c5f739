// Child processes with line-oriented stdout, for the orchestrator.
import { spawn } from 'node:child_process';

export class Child {
  /**
   * @param {string} cmd
   * @param {string[]} args
   * @param {{cwd?: string, stdin?: boolean, env?: NodeJS.ProcessEnv, name: string}} opts
   */
  constructor(cmd, args, opts) {
    this.name = opts.name;
    this.proc = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    this.pid = this.proc.pid;
    // A child that exits early must not take the orchestrator down with EPIPE.
    if (opts.stdin) this.proc.stdin.on('error', () => {});
    this.nextRequestId = 0;
    this.lines = [];
    this.stderr = '';
    this.waiters = [];
    let resolveExited;
    this.exited = new Promise((resolve) => {
      resolveExited = resolve;
      this.proc.on('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        for (const w of this.waiters.splice(0)) w.reject(new Error(`${this.name} exited (${signal ?? code}) while waiting for ${w.what}${this.stderrTail()}`));
        resolve({ code, signal });
      });
    });
    this.proc.on('error', (err) => {
      for (const w of this.waiters.splice(0)) w.reject(new Error(`${this.name}: ${err.message}`));
      // A child that never started emits no 'exit': without this, stop() would wait forever.
      if (this.proc.pid === undefined) {
        this.exitCode = null;
        this.exitSignal = 'spawn-failed';
        resolveExited({ code: null, signal: 'spawn-failed' });
      }
    });
    let buf = '';
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.lines.push(line);
        for (const w of [...this.waiters]) {
          if (w.test(line)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
  }

  stderrTail() {
    const t = this.stderr.trim();
    return t ? `; stderr: ${t.slice(-1000)}` : '';
  }

  /** Resolves with the first stdout line (already seen or future) that passes `test`. */
  waitLine(test, what, timeoutMs) {
    const seen = this.lines.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    if (this.exitCode !== undefined || this.exitSignal) {
      return Promise.reject(new Error(`${this.name} has exited; no ${what}${this.stderrTail()}`));
    }
    return new Promise((resolve, reject) => {
      const w = {
        test,
        what,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms${this.stderrTail()}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** The port of the bench server's `listening <port>` line. */
  async listeningPort(timeoutMs) {
    const line = await this.waitLine((l) => l.startsWith('listening '), '"listening <port>"', timeoutMs);
    return Number(line.split(' ')[1]);
  }

  /**
   * Resolves when idle-loadgen.mjs says `ready` (all its connections open);
   * rejects with its `result` line when it gave up instead.
   */
  async ready(timeoutMs) {
    const line = await this.waitLine((l) => l.startsWith('ready ') || l.startsWith('result '), '"ready"', timeoutMs);
    if (line.startsWith('result ')) throw new Error(`${this.name} failed: ${line}`);
    return line;
  }

  write(text) {
    this.proc.stdin.write(text);
  }

  /**
   * Sends `<cmd> <id>` on stdin and resolves with the JSON of the answer line
   * `<cmd> <id> <json>` (the control protocol of servers/idle-common.mjs and
   * idle-loadgen.mjs).
   */
  async request(cmd, timeoutMs = 30000) {
    const id = ++this.nextRequestId;
    const prefix = `${cmd} ${id} `;
    const answer = this.waitLine((l) => l.startsWith(prefix), `answer to "${cmd}"`, timeoutMs);
    this.write(`${cmd} ${id}\n`);
    return JSON.parse((await answer).slice(prefix.length));
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 5000) {
    if (this.exitCode !== undefined || this.exitSignal) return this.exited;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }
}
