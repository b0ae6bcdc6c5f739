// Real packet loss for tests that run as root: a private network namespace whose
// loopback carries all the test traffic, and an nftables table in it that drops
// all, or a random share, of the packets on a port.
//
// Both ends run inside the namespace (exec() spawns `ip netns exec NAME cmd ...`)
// and talk over the namespace's own 127.0.0.1, so no traffic ever leaves it and
// the host's network and firewall are untouched. (`tc netem` is not available in
// this kernel; nftables is.)
//
//   if (await netnsAvailable()) {
//     const link = await LossyLink.create();
//     try {
//       const server = link.exec(process.execPath, ['-e', SERVER_JS]);
//       ...
//       await link.dropAll(port);      // silence, both ways, no RST, no FIN
//       await link.dropShare(port, 30) // 30 % of packets vanish (TCP retransmits)
//       await link.clear();
//     } finally {
//       await link.destroy();          // kills what exec() started, deletes the namespace
//     }
//   }
//
// Drops happen on the input hook: the sender's kernel hands the packet to the
// loopback device and it vanishes on the way in, as on a lossy network. (Dropping
// on output would make send()/connect() fail with EPERM, which real loss never does.)

import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { ms } from './peers.js';

/** 'up': packets to the port (client -> server); 'down': packets from it; 'both'. */
export type LossDirection = 'up' | 'down' | 'both';
export type LossProtocol = 'tcp' | 'udp' | 'any';

export interface DropOptions {
  /** Default 'both'. */
  direction?: LossDirection;
  /** Default 'any' (TCP and UDP). */
  protocol?: LossProtocol;
}

export interface DropCounters {
  /** Packets dropped by our rules since the last clear(). */
  packets: number;
  bytes: number;
}

const TABLE = 'lifeline';
const CHAIN = 'input';
const COMMAND_TIMEOUT = ms(10_000);

function findBinary(name: string): string | null {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const extra of ['/usr/sbin', '/sbin', '/usr/bin', '/bin']) if (!dirs.includes(extra)) dirs.push(extra);
  for (const dir of dirs) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

const IP = findBinary('ip');
const NFT = findBinary('nft');

/** Runs a command; resolves with stdout, rejects with stderr in the message. */
function run(cmd: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: COMMAND_TIMEOUT, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr.trim() || err.message}`, { cause: err }));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

let availability: Promise<boolean> | undefined;

/**
 * Whether LossyLink can work here: root, `ip` and `nft` present, and a namespace
 * can be created and filtered (probed with `lifeline-probe-<pid>`, then deleted).
 * Cached per process.
 */
export function netnsAvailable(): Promise<boolean> {
  availability ??= (async () => {
    if (process.platform !== 'linux' || process.getuid?.() !== 0 || IP === null || NFT === null) return false;
    const probe = `lifeline-probe-${process.pid}`;
    try {
      await run(IP, ['netns', 'add', probe]);
    } catch {
      return false;
    }
    try {
      await run(IP, ['netns', 'exec', probe, NFT, 'list', 'ruleset']);
      return true;
    } catch {
      return false;
    } finally {
      await run(IP, ['netns', 'delete', probe]).catch(() => {});
    }
  })();
  return availability;
}

let nextLink = 0;
const liveLinks = new Set<LossyLink>();
let exitHookInstalled = false;

/** If a test forgets destroy() (or crashes), do not leave namespaces behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const link of liveLinks) link.destroySync();
  });
}

/** A private network namespace with its loopback up and an nftables table that can drop packets. */
export class LossyLink {
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;
  private destroying: Promise<void> | null = null;

  private constructor(
    /** `lifeline-<pid>-<n>` */
    readonly name: string,
    private readonly ip: string,
    private readonly nft: string,
  ) {}

  /** Creates the namespace, brings `lo` up, installs an empty `inet lifeline` table. */
  static async create(): Promise<LossyLink> {
    if (!(await netnsAvailable()) || IP === null || NFT === null) {
      throw new Error('LossyLink needs root, `ip` and `nft`, and network namespaces (see netnsAvailable())');
    }
    const link = new LossyLink(`lifeline-${process.pid}-${nextLink++}`, IP, NFT);
    await run(IP, ['netns', 'add', link.name]);
    liveLinks.add(link);
    installExitHook();
    try {
      await run(IP, ['-n', link.name, 'link', 'set', 'lo', 'up']);
      await link.nftScript(
        `table inet ${TABLE} {\n` +
          `  chain ${CHAIN} {\n` +
          `    type filter hook input priority filter; policy accept;\n` +
          `  }\n` +
          `}\n`,
      );
    } catch (err) {
      await link.destroy();
      throw err;
    }
    return link;
  }

  /**
   * Spawns `cmd args` inside the namespace (`ip netns exec` execs it, so the
   * child's pid is the command's). destroy() kills it if it is still running.
   */
  exec(cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): ChildProcess {
    if (this.destroyed) throw new Error(`LossyLink ${this.name} is destroyed`);
    const child = spawn(this.ip, ['netns', 'exec', this.name, cmd, ...args], { stdio: 'pipe', ...opts });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.once('error', () => this.children.delete(child));
    return child;
  }

  /** Runs `cmd args` inside the namespace to completion; resolves with its stdout. */
  run(cmd: string, args: readonly string[] = [], input?: string): Promise<string> {
    return run(this.ip, ['netns', 'exec', this.name, cmd, ...args], input);
  }

  /** Drop every packet on `port` (both ways, TCP and UDP by default). Adds to rules already there. */
  dropAll(port: number, opts: DropOptions = {}): Promise<void> {
    return this.addRules(port, null, opts);
  }

  /** Drop a random `percent` (0..100) of the packets on `port`, each packet drawn independently. */
  dropShare(port: number, percent: number, opts: DropOptions = {}): Promise<void> {
    if (!(Number.isInteger(percent) && percent >= 0 && percent <= 100)) {
      throw new RangeError(`dropShare: percent must be an integer in 0..100, got ${percent}`);
    }
    return this.addRules(port, percent, opts);
  }

  /** Removes every drop rule (traffic flows again; dropped() restarts from 0). */
  async clear(): Promise<void> {
    await this.run(this.nft, ['flush', 'chain', 'inet', TABLE, CHAIN]);
  }

  /** What our rules have dropped since the last clear(), from their nftables counters. */
  async dropped(): Promise<DropCounters> {
    const json = JSON.parse(await this.run(this.nft, ['-j', 'list', 'chain', 'inet', TABLE, CHAIN])) as {
      nftables: Array<{ rule?: { expr: Array<{ counter?: { packets: number; bytes: number } }> } }>;
    };
    const total: DropCounters = { packets: 0, bytes: 0 };
    for (const item of json.nftables) {
      for (const expr of item.rule?.expr ?? []) {
        if (expr.counter) {
          total.packets += expr.counter.packets;
          total.bytes += expr.counter.bytes;
        }
      }
    }
    return total;
  }

  /** The ruleset of the namespace, as `nft list ruleset` prints it (for failure messages). */
  ruleset(): Promise<string> {
    return this.run(this.nft, ['list', 'ruleset']);
  }

  /** Kills what exec() started (SIGKILL, waiting for exit), then deletes the namespace. Idempotent. */
  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      this.destroyed = true;
      await Promise.all(
        [...this.children].map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              const guard = setTimeout(resolve, ms(5000));
              child.once('exit', () => {
                clearTimeout(guard);
                resolve();
              });
              child.kill('SIGKILL');
            }),
        ),
      );
      this.children.clear();
      // A namespace lives on while a process is in it; ours are gone now.
      await run(this.ip, ['netns', 'delete', this.name]).catch(() => {});
      liveLinks.delete(this);
    })();
    return this.destroying;
  }

  /** @internal For the process 'exit' hook: best effort, synchronous. */
  destroySync(): void {
    this.destroyed = true;
    for (const child of this.children) child.kill('SIGKILL');
    try {
      execFileSync(this.ip, ['netns', 'delete', this.name], { stdio: 'ignore', timeout: COMMAND_TIMEOUT });
    } catch {
      // already gone
    }
    liveLinks.delete(this);
  }

  private async addRules(port: number, percent: number | null, opts: DropOptions): Promise<void> {
    if (!(Number.isInteger(port) && port > 0 && port < 65536)) throw new RangeError(`port must be 1..65535, got ${port}`);
    const direction = opts.direction ?? 'both';
    const protocol = opts.protocol ?? 'any';
    const proto = protocol === 'any' ? 'meta l4proto { tcp, udp } th' : protocol;
    const share = percent === null ? '' : ` numgen random mod 100 < ${percent}`;
    const fields = direction === 'both' ? ['dport', 'sport'] : direction === 'up' ? ['dport'] : ['sport'];
    const script = fields.map((f) => `add rule inet ${TABLE} ${CHAIN} ${proto} ${f} ${port}${share} counter drop\n`).join('');
    await this.nftScript(script);
  }

  private async nftScript(script: string): Promise<void> {
    await this.run(this.nft, ['-f', '-'], script);
  }
}
