/**
 * Round-trip time estimate from ping/pong samples, the way TCP does it
 * (RFC 6298: SRTT and RTTVAR with gains 1/8 and 1/4), and the adaptive
 * liveness timeout derived from it: clamp(srtt + k * rttvar, floor, ceiling).
 */

export class RttEstimator {
  /** Smoothed RTT, ms (NaN before the first sample). */
  srtt = NaN;
  /** RTT variation, ms. */
  rttvar = NaN;
  max = 0;
  samples = 0;
  // Start at 0, not NaN / Infinity: whole-millisecond samples then stay small
  // integers, kept in the object itself, not in a 16-byte box each (one
  // estimator per connection). The getters give NaN / Infinity before the first sample.
  private _last = 0;
  private _min = 0;

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
    if (this.samples === 1) {
      // RFC 6298 2.2: first measurement R: SRTT <- R, RTTVAR <- R/2.
      this.srtt = rtt;
      this.rttvar = rtt / 2;
    } else {
      // RFC 6298 2.3: RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|; SRTT <- 7/8 SRTT + 1/8 R'.
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rtt);
      this.srtt = 0.875 * this.srtt + 0.125 * rtt;
    }
  }

  /**
   * The liveness timeout: how long to wait for an answer to a ping.
   * Before any sample it is `initial` (itself clamped).
   */
  timeout(k: number, floor: number, ceiling: number, initial: number): number {
    const raw = this.samples === 0 ? initial : this.srtt + k * this.rttvar;
    return raw < floor ? floor : raw > ceiling ? ceiling : raw;
  }

  snapshot(): { last: number | null; smoothed: number | null; variation: number | null; min: number | null; max: number | null; samples: number } {
    const n = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);
    return { last: n(this.last), smoothed: n(this.srtt), variation: n(this.rttvar), min: n(this.min), max: this.samples ? n(this.max) : null, samples: this.samples };
  }
}
