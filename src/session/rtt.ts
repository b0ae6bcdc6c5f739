/**
 * Round-trip time estimate from ping/pong samples, the way TCP does it
 * (RFC 6298: SRTT and RTTVAR with gains 1/8 and 1/4), and the adaptive
 * liveness timeout derived from it: clamp(srtt + k * rttvar, floor, ceiling).
 */

/**
 * SRTT and RTTVAR are kept in units of 1/1024 ms (about 1 us) as whole
 * numbers, which V8 keeps in the object itself, where fractional
 * milliseconds would take a 16-byte box each (two per connection on a
 * server). SRTT moves toward each sample by at least a unit (its eighth of
 * the difference rounded up), so a steady RTT is reached exactly and the
 * estimate never leaves the samples' range; RTTVAR is rounded down, so a
 * steady RTT takes it to 0 (rounded to nearest, 3/4 of 2 units stays 2).
 * Each step rounds by at most a unit and the smoothing shrinks what came
 * before by 7/8 or 3/4, so the estimate stays within 8 (SRTT) and 13
 * (RTTVAR) units, about 8-13 us, of the exact one; servers' samples are
 * whole ms anyway (the heartbeat's coarse clock).
 */
const UNITS_PER_MS = 1024;

export class RttEstimator {
  max = 0;
  samples = 0;
  // Start at 0, not NaN / Infinity: whole-millisecond samples then stay small
  // integers, kept in the object itself, not in a 16-byte box each (one
  // estimator per connection). The getters give NaN / Infinity before the first sample.
  private _last = 0;
  private _min = 0;
  /** SRTT and RTTVAR in 1/1024 ms. */
  private _srtt = 0;
  private _rttvar = 0;

  /** Smoothed RTT, ms (NaN before the first sample). */
  get srtt(): number {
    return this.samples === 0 ? NaN : this._srtt / UNITS_PER_MS;
  }

  /** RTT variation, ms (NaN before the first sample). */
  get rttvar(): number {
    return this.samples === 0 ? NaN : this._rttvar / UNITS_PER_MS;
  }

  /** Last sample, ms (NaN before the first). */
  get last(): number {
    return this.samples === 0 ? NaN : this._last;
  }

  /** Smallest sample, ms (Infinity before the first). */
  get min(): number {
    return this.samples === 0 ? Infinity : this._min;
  }

  sample(rtt: number): void {
    if (!(rtt >= 0) || !Number.isFinite(rtt)) return;
    this._last = rtt;
    this.samples++;
    if (this.samples === 1 || rtt < this._min) this._min = rtt;
    if (rtt > this.max) this.max = rtt;
    const r = Math.round(rtt * UNITS_PER_MS);
    if (this.samples === 1) {
      // RFC 6298 2.2: first measurement R: SRTT <- R, RTTVAR <- R/2.
      this._srtt = r;
      this._rttvar = Math.floor(r / 2);
    } else {
      // RFC 6298 2.3: RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|; SRTT <- 7/8 SRTT + 1/8 R'.
      const d = r - this._srtt;
      this._rttvar = Math.floor(0.75 * this._rttvar + 0.25 * Math.abs(d));
      this._srtt += Math.sign(d) * Math.ceil(Math.abs(d) / 8);
    }
  }

  /**
   * The liveness timeout: how long to wait for an answer to a ping.
   * Before any sample it is `initial` (itself clamped).
   */
  timeout(k: number, floor: number, ceiling: number, initial: number): number {
    const raw = this.samples === 0 ? initial : (this._srtt + k * this._rttvar) / UNITS_PER_MS;
    return raw < floor ? floor : raw > ceiling ? ceiling : raw;
  }

  snapshot(): { last: number | null; smoothed: number | null; variation: number | null; min: number | null; max: number | null; samples: number } {
    const n = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);
    return { last: n(this.last), smoothed: n(this.srtt), variation: n(this.rttvar), min: n(this.min), max: this.samples ? n(this.max) : null, samples: this.samples };
  }
}
