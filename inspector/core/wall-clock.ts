/**
 * Wall-clock milliseconds of a CLOCK_MONOTONIC instant (process.hrtime.bigint()).
 *
 * Why: a part's `capturedAtMs` (the time people see, and the order of the review queue) was
 * `Date.now() - frameToVerdictMs`. Date.now() has 1 ms steps, so two parts captured within a
 * millisecond could be stored in the wrong order. Anchoring the monotonic clock to the wall
 * clock once gives times in capture order. The anchor is renewed every minute so that a
 * stepped wall clock (NTP, an operator) is followed within a minute; the renewal moves times
 * by the clocks' drift since the last one, far below a millisecond.
 */
const RENEW_NS = 60_000_000_000n;

let anchorNs = 0n;
let anchorWallMs = 0;

function renew(nowNs: bigint): void {
  anchorWallMs = Date.now();
  anchorNs = nowNs;
}

/** The wall-clock ms (as Date.now(), with fractions) at the monotonic instant `ns`. */
export function wallMsAt(ns: bigint): number {
  const now = process.hrtime.bigint();
  if (anchorNs === 0n || now - anchorNs > RENEW_NS) renew(now);
  return anchorWallMs + Number(ns - anchorNs) / 1e6;
}
