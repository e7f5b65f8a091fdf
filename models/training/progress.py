"""Progress lines for long training runs, the same as the inspector's CLIs print
(inspector/core/progress.ts) when their output is not a terminal:

    train: 120/300 (40 %), 2.1/s, ETA 1m26s

one line on stderr (flushed) at least every `interval` seconds (default 30, or
INSPECTOR_PROGRESS_INTERVAL_MS) and one at the end, so a run whose output is
redirected to a file still says where it is. Counts steps (batches); rate =
done / seconds since the start, ETA = (total - done) / rate.

    p = Progress('train', total=epochs * steps_per_epoch)
    for ...: p.update(step)
    p.close()

Plain Python (no torch), so it can be tested on any machine.
"""
import math
import os
import sys
import time

DEFAULT_INTERVAL_S = 30.0


def default_interval_s(env=os.environ):
    try:
        v = float(env.get('INSPECTOR_PROGRESS_INTERVAL_MS', ''))
    except ValueError:
        return DEFAULT_INTERVAL_S
    return v / 1000.0 if math.isfinite(v) and v > 0 else DEFAULT_INTERVAL_S


def format_duration(seconds):
    """86 -> '1m26s', 5 -> '5s', 3725 -> '1h02m05s'."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return '?'
    s = int(math.floor(seconds + 0.5))
    h, m, r = s // 3600, (s % 3600) // 60, s % 60
    if h > 0:
        return f'{h}h{m:02d}m{r:02d}s'
    if m > 0:
        return f'{m}m{r:02d}s'
    return f'{r}s'


def format_rate(per_second):
    if not math.isfinite(per_second) or per_second <= 0:
        return '0/s'
    if per_second >= 10:
        return f'{per_second:.0f}/s'
    if per_second >= 1:
        return f'{per_second:.1f}/s'
    if per_second >= 1 / 60:
        return f'{per_second * 60:.1f}/min'
    return f'{per_second * 3600:.1f}/h'


def progress_line(label, done, total, elapsed_s):
    pct = (100 * done) // total if total > 0 else 0
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    left = max(0, total - done)
    eta = '0s' if left == 0 else (format_duration(left / rate) if rate > 0 else '?')
    line = f'{label}: {done}/{total} ({pct} %), {format_rate(rate)}, ETA {eta}'
    if total > 0 and done >= total:
        line += f' (done in {format_duration(elapsed_s)})'
    return line


class Progress:
    def __init__(self, label, total, interval_s=None, stream=None, clock=time.monotonic):
        self.label = label
        self.total = total
        self.done = 0
        self.interval_s = default_interval_s() if interval_s is None else interval_s
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.t0 = clock()
        self.last = self.t0
        self.closed = False

    def line(self):
        return progress_line(self.label, self.done, self.total, self.clock() - self.t0)

    def _emit(self, suffix=''):
        self.last = self.clock()
        print(self.line() + suffix, file=self.stream, flush=True)

    def update(self, done, suffix=''):
        """`done` of `total`; a line when `interval_s` has passed since the last one."""
        self.done = done
        if not self.closed and self.clock() - self.last >= self.interval_s:
            self._emit(suffix)

    def close(self, suffix=''):
        """The final line (once)."""
        if not self.closed:
            self.closed = True
            self._emit(suffix)
