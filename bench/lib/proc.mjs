// CPU accounting from /proc (Linux): per process and for the whole machine.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

let clkTck;

/** Clock ticks per second for /proc times (`getconf CLK_TCK`, almost always 100). */
export function clockTicks() {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    } catch {
      clkTck = NaN;
    }
    if (!Number.isFinite(clkTck) || clkTck <= 0) clkTck = 100;
  }
  return clkTck;
}

/** Whether /proc CPU accounting is available (Linux). */
export function hasProc() {
  return fs.existsSync('/proc/stat') && fs.existsSync(`/proc/${process.pid}/stat`);
}

/**
 * What /proc/PID/stat says of the process's CPU, split: user (utime, field
 * 14) and system (stime, field 15) ticks, and its minor page faults so far
 * (minflt, field 10); null when the process is gone. A run whose
 * CPU per message moves with the machine's phase shows here which side
 * moved: our code and V8's (user) or the kernel's (system), and whether
 * the kernel's extra time went to faulting memory in.
 */
export function processStat(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field n is rest[n - 3].
  return { user: Number(rest[11]), sys: Number(rest[12]), minorFaults: Number(rest[7]) };
}

/**
 * A process's CPU clocks, read together: /proc/PID/stat's (processStat()'s
 * user, sys and minorFaults; `ticks` = user + sys, in clock ticks of 10 ms)
 * and the scheduler's exact one (`ns`: the run time of every thread so far,
 * the first field of /proc/PID/task/TID/schedstat, summed; NaN where the
 * kernel has no schedstat). Why both: half a second of CPU, what a run of
 * scenario a or g measures, is about 50 ticks, and a reading in ticks is
 * off by up to one at each end (2% of the figure each, measured against
 * the exact clock on the bench VM). Null when the process is gone.
 */
export function processCpu(pid) {
  const st = processStat(pid);
  if (st === null) return null;
  let ns = NaN;
  let tids;
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  for (const tid of tids) {
    let text;
    try {
      text = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8');
    } catch (err) {
      // A thread that ended after readdir: its time leaves the sum (cpuBetween() checks for that).
      if (err.code === 'ENOENT' || err.code === 'ESRCH') continue;
      return { ...st, ticks: st.user + st.sys, ns: NaN };
    }
    const v = Number(text.slice(0, text.indexOf(' ')));
    ns = Number.isNaN(ns) ? v : ns + v;
  }
  return { ...st, ticks: st.user + st.sys, ns };
}

/**
 * CPU seconds between two processCpu() readings of one process: from the
 * exact clock when both readings have it and it agrees with the ticks
 * within their rounding (2 ticks and 2%): a thread that ended in between
 * takes its run time out of the exact sum but not out of the ticks, and
 * then the ticks are used. `userSec` and `sysSec` split that figure as the
 * ticks split (what the kernel itself does for utime and stime); `clock`
 * says which clock gave it ('none', and NaN figures, when a reading is
 * null), `ticksSec` is the ticks' figure.
 */
export function cpuBetween(a, b, tick) {
  // A process gone before either reading (processCpu() gave null): no figure.
  if (a === null || b === null) return { sec: NaN, userSec: NaN, sysSec: NaN, clock: 'none', ticksSec: NaN };
  const ticksSec = (b.ticks - a.ticks) / tick;
  const nsSec = (b.ns - a.ns) / 1e9;
  const exact = Number.isFinite(nsSec) && nsSec >= 0 && Math.abs(nsSec - ticksSec) <= 2 / tick + 0.02 * nsSec;
  const sec = exact ? nsSec : ticksSec;
  const dUser = b.user - a.user;
  const dSys = b.sys - a.sys;
  const userShare = dUser + dSys > 0 ? dUser / (dUser + dSys) : 1;
  return { sec, userSec: sec * userShare, sysSec: sec * (1 - userShare), clock: exact ? 'schedstat' : 'ticks', ticksSec };
}

/**
 * Machine-wide CPU ticks from the first line of /proc/stat, summed over all
 * CPUs: busy (user+nice+system+irq+softirq), idle (idle+iowait), steal.
 */
export function machineTicks() {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal };
}

export function cpuCount() {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * Read and write system calls a process has made (syscr/syscw in
 * /proc/PID/io; socket reads and writes count). Null when unavailable.
 */
export function processSyscalls(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
  } catch {
    return null;
  }
  const r = /^syscr:\s*(\d+)/m.exec(text);
  const w = /^syscw:\s*(\d+)/m.exec(text);
  return r && w ? { reads: Number(r[1]), writes: Number(w[1]) } : null;
}

/** The read and write calls between two processSyscalls() readings; null if either is. */
export function syscallsBetween(before, after) {
  return before && after ? { reads: after.reads - before.reads, writes: after.writes - before.writes } : null;
}
