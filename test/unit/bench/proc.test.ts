// The bench's process CPU clock (bench/lib/proc.mjs processCpu, cpuBetween):
// the scheduler's exact run time where Linux has schedstat, the 10 ms ticks
// of /proc/PID/stat where it does not or where the two disagree (a thread
// that ended between two readings takes its time out of the exact sum).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
// @ts-expect-error: a plain .mjs module without type declarations
import { clockTicks, cpuBetween, processCpu } from '../../../bench/lib/proc.mjs';

type Reading = { user: number; sys: number; minorFaults: number; ticks: number; ns: number };
const reading = (user: number, sys: number, ns: number): Reading => ({ user, sys, minorFaults: 0, ticks: user + sys, ns });

describe('bench process CPU: cpuBetween', () => {
  it('takes the exact clock when it agrees with the ticks, split as the ticks split', () => {
    // 51 ticks of 10 ms against 503.2 ms exact: within the ticks' rounding.
    const c = cpuBetween(reading(100, 20, 1e9), reading(140, 31, 1e9 + 503.2e6), 100);
    assert.equal(c.clock, 'schedstat');
    assert.ok(Math.abs(c.sec - 0.5032) < 1e-12);
    assert.ok(Math.abs(c.userSec - (0.5032 * 40) / 51) < 1e-12);
    assert.ok(Math.abs(c.sysSec - (0.5032 * 11) / 51) < 1e-12);
    assert.equal(c.ticksSec, 0.51);
  });

  it('falls back to the ticks when the exact sum lost time (a thread ended in between), or is missing', () => {
    // 80 ticks, but the exact sum grew by 0.5 s only: 0.3 s left with a thread.
    const lost = cpuBetween(reading(0, 0, 0), reading(70, 10, 0.5e9), 100);
    assert.equal(lost.clock, 'ticks');
    assert.equal(lost.sec, 0.8);
    const none = cpuBetween(reading(0, 0, NaN), reading(30, 0, NaN), 100);
    assert.equal(none.clock, 'ticks');
    assert.equal(none.sec, 0.3);
    assert.equal(none.userSec, 0.3);
  });

  it('gives no figure when a reading is missing (the process was gone)', () => {
    const c = cpuBetween(null, reading(1, 1, 1), 100);
    assert.equal(c.clock, 'none');
    assert.ok(Number.isNaN(c.sec));
  });
});

describe('bench process CPU: processCpu on a real process', { skip: !fs.existsSync('/proc/self/task') && 'Linux only (/proc)' }, () => {
  it("reads a busy child's CPU on both clocks, and the two agree", async () => {
    // A child that spins for 300 ms of its own CPU time when told to (not of wall time: on a busy machine it gets less CPU), then says so.
    const spin =
      "process.stdin.once('data', () => { const u = process.cpuUsage(); while (process.cpuUsage(u).user + process.cpuUsage(u).system < 300_000); process.stdout.write('done'); }); process.stdout.write('ready');";
    const child = spawn(process.execPath, ['-e', spin], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      // Started up first: Node's start is not in the window.
      await new Promise((resolve) => child.stdout.once('data', resolve));
      const before: Reading = processCpu(child.pid);
      assert.ok(before !== null);
      child.stdin.write('go');
      await new Promise((resolve) => child.stdout.once('data', resolve));
      const after: Reading = processCpu(child.pid);
      const c = cpuBetween(before, after, clockTicks());
      if (Number.isFinite(before.ns)) {
        assert.equal(c.clock, 'schedstat', `exact ${(after.ns - before.ns) / 1e6} ms, ticks ${c.ticksSec * 1000} ms`);
      }
      assert.ok(c.sec >= 0.29 && c.sec < 1, `300 ms of CPU spun (${c.sec} s)`);
    } finally {
      child.kill();
    }
  });

  it('is null for a process that is gone', () => {
    assert.equal(processCpu(2 ** 22 + 12345), null);
  });
});
