// Scenario d's table (bench/lib/idle.mjs formatIdleSummary): besides memory
// and heartbeat CPU it shows each server's connection-setup CPU per
// connection (connectServerCpuUsPerConn), the cost of a reconnect storm.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
// @ts-expect-error: a plain .mjs module without type declarations
import { formatIdleSummary, table } from '../../../bench/lib/idle.mjs';

const row = (connectServerCpuUsPerConn: number) => ({
  rssPerConnKB: 3,
  heapPerConnKB: 2,
  idleCpuShare: 0.01,
  pingsSent: 100,
  pongsReceived: 100,
  cpuUsPerPing: 30,
  connectServerCpuUsPerConn,
  closes: 0,
  failed: 0,
  pair: null,
  rssVsPair: NaN,
  heapVsPair: NaN,
  cpuVsPair: NaN,
  rssVsNet: NaN,
  flagged: 0,
});

describe('scenario d table', () => {
  it("shows each server's setup CPU per connection in its own column", () => {
    const params = { connections: 1000, windowSec: 5, windows: 'shared', steadySec: 0, reps: 1 };
    const text: string = formatIdleSummary({ servers: {} }, ['lifeline', 'ws'], params, { lifeline: row(183.46), ws: row(NaN) }, table);
    const lines = text.split('\n');
    const header = lines[0]!.split(/\s{2,}/);
    const col = header.indexOf('setup us/conn');
    assert.ok(col > 0, `a 'setup us/conn' column in ${lines[0]}`);
    const cells = (name: string) => lines.find((l) => l.startsWith(name + ' '))!.trim().split(/\s{2,}/);
    assert.equal(cells('lifeline')[col], '183.5');
    assert.equal(cells('ws')[col], '-', 'no figure, no number');
    assert.match(text, /Setup: server CPU from starting the loadgen until the server held all N connections/);
  });
});
