/**
 * Decimal digits of whole numbers written straight into bytes: the sequence
 * numbers of lifeline.v1 data headers and the timestamps of heartbeat pings,
 * which go out on every message or every ping. No string per number, and no
 * call into Node's string encoder.
 */

// Both run for every message sent (and again for its ack, if it carries
// one): comparisons, and 32-bit integer division where the value allows, not
// floating-point arithmetic. Values below 10^9 (any session that has not sent
// a billion messages) never reach the loop, whose power of ten leaves the
// 32-bit range.

/** How many decimal digits `n` (a safe integer >= 0) has. */
export function decimalDigits(n: number): number {
  if (n < 100000) return n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : 5;
  if (n < 1000000000) return n < 1000000 ? 6 : n < 10000000 ? 7 : n < 100000000 ? 8 : 9;
  let d = 10;
  for (let p = 1e10; n >= p; p *= 10) d++;
  return d;
}

// The two ASCII digits of 00 to 99, so that the 32-bit loop below writes two
// digits per division: a sequence number of six digits takes three. Made by
// a call marked pure, so that a bundle without putDecimalBefore (the browser
// client's) leaves the table out.
function digitPairs(): Uint8Array {
  const t = new Uint8Array(200);
  for (let k = 0; k < 100; k++) {
    t[2 * k] = 0x30 + ((k / 10) | 0);
    t[2 * k + 1] = 0x30 + (k % 10);
  }
  return t;
}
const DIGIT_PAIRS = /* @__PURE__ */ digitPairs();

/** Writes the decimal digits of `n` (a safe integer >= 0) so that the last one is at `end - 1`; returns where the first one is. */
export function putDecimalBefore(buf: Uint8Array, end: number, n: number): number {
  let i = end;
  for (; n > 0x7fffffff; ) {
    buf[--i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  while (n >= 100) {
    const q = (n / 100) | 0;
    const p = (n - q * 100) << 1;
    buf[--i] = DIGIT_PAIRS[p + 1]!;
    buf[--i] = DIGIT_PAIRS[p]!;
    n = q;
  }
  if (n >= 10) {
    buf[--i] = DIGIT_PAIRS[(n << 1) + 1]!;
    buf[--i] = DIGIT_PAIRS[n << 1]!;
  } else {
    buf[--i] = 0x30 + n;
  }
  return i;
}
