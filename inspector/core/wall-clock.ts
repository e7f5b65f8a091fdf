/**
 * Wall-clock milliseconds of a CLOCK_MONOTONIC instant (process.hrtime.bigint()).
 *
 * Why: a part's `capturedAtMs` (the time people see, and the order of the review queue) was
 * `Date.now() - frameToVerdictMs`. Date.now() has 1 ms steps, so two parts captured within a
 * millisecond could be stored in the wrong order. Anchoring the monotonic clock to the wall
 * clock gives times in capture order. The anchor is renewed every minute by a timer (not by
 * the callers: wallMsAt runs once per part on the hot path and reads two numbers), so that a
 * stepped wall clock (NTP, an operator) is followed within a minute; a renewal moves times by
 * the clocks' drift since the last one, far below a millisecond.
 */
const RENEW_MS = 60_000;

let anchorNs = 0;
let anchorWallMs = 0;

function renew(): void {
  anchorWallMs = Date.now();
  anchorNs = Number(process.hrtime.bigint()); // exact to the ns for 104 days of uptime, within tens of ns for years
}
renew();
setInterval(renew, RENEW_MS).unref();

/** The wall-clock ms (as Date.now(), with fractions) at the monotonic instant `ns`. */
export function wallMsAt(ns: bigint): number {
  return anchorWallMs + (Number(ns) - anchorNs) / 1e6;
}
