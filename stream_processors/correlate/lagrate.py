"""Lagged cross-correlation of two services' symptom rates: evidence that they move together.

Pure.  Each service's symptom times are counted per :data:`BIN_S` of event time over the
span both cover (at most :data:`SPAN_BINS` bins, the latest ones); the Pearson correlation
of the two count series is taken at every lag of up to :data:`MAX_LAG_BINS` bins either
way, and the best one is the evidence: a callee's error rate that a caller's follows ten
seconds later correlates at lag +1.  A service whose symptoms fill fewer than
:data:`MIN_BINS` bins is not tested — a single burst is a point in time, not a rate, and
two points in time coincide by chance.

The correlator uses it twice (:mod:`.links`, :mod:`.correlator`): as a link reason when a
service new to an incident moves with one of its services (:data:`FOLLOW_R`), and as the
test that keeps such a link — a link that rested on the rates is cut, and the incident
split, when the rates *after* the link fall apart (:func:`apart`: they correlate below
:data:`APART_R`, well below the join level so a link does not flicker, or one side goes on
failing alone).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

_US = 1_000_000
BIN_S = 10.0  # symptom counts per 10 s of event time
MAX_LAG_BINS = 6  # lags of up to a minute, either way
SPAN_BINS = 360  # the latest hour of both services' symptoms
MIN_SIGNALS = 4  # fewer symptoms are not a rate ...
MIN_BINS = 3  # ... nor symptoms that fill fewer bins
FOLLOW_R = 0.7  # correlation at which moving together is a link reason
APART_R = 0.3  # correlation below which a link that rested on it is cut
ALONE_S = 300.0  # one service failing this long after a link while the other stays silent: apart
KEEP_TIMES = 600  # symptom times an incident keeps per service under test


def correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation (0 where either series is constant or shorter than 3)."""
    n = len(x)
    if n < 3:
        return 0.0
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else 0.0


def best_lag(cause: Sequence[float], effect: Sequence[float], max_lag: int = MAX_LAG_BINS,
             min_lag: int = 1) -> tuple[float, int]:
    """The highest correlation of ``cause`` shifted later by ``min_lag``..``max_lag`` bins with
    ``effect``, and that lag (0, 0 when none is positive)."""
    best, at = 0.0, 0
    for lag in range(min_lag, max_lag + 1):
        c = correlation(cause[:len(cause) - lag], effect[lag:])
        if c > best:
            best, at = c, lag
    return best, at


def _counts(times: Sequence[int], start_us: int, width_us: int, bins: int) -> list[float]:
    out = [0.0] * bins
    for t in times:
        slot = (t - start_us) // width_us
        if 0 <= slot < bins:
            out[slot] += 1.0
    return out


def co_movement(a: Sequence[int], b: Sequence[int], bin_s: float = BIN_S, span_bins: int = SPAN_BINS
                ) -> tuple[float, int] | None:
    """How ``b``'s symptom rate moves with ``a``'s: ``(r, lag_s)``, the best correlation over lags
    of up to :data:`MAX_LAG_BINS` bins and that lag in seconds (positive: ``b`` follows ``a``).

    None when either side has too few symptoms or bins to be a rate (not tested, which is not the
    same as "apart").  Only the latest ``span_bins`` bins of the two are compared."""
    if len(a) < MIN_SIGNALS or len(b) < MIN_SIGNALS:
        return None
    width = int(bin_s * _US)
    end = max(max(a), max(b))
    start = max(min(min(a), min(b)), end - max(span_bins - MAX_LAG_BINS, MIN_BINS) * width)
    bins = int((end - start) // width) + 1 + MAX_LAG_BINS
    xa, xb = _counts(a, start, width, bins), _counts(b, start, width, bins)
    if sum(1 for v in xa if v) < MIN_BINS or sum(1 for v in xb if v) < MIN_BINS:
        return None
    follow, lag_f = best_lag(xa, xb, min_lag=0)
    lead, lag_l = best_lag(xb, xa)
    if lead > follow:
        return lead, -int(lag_l * bin_s)
    return follow, int(lag_f * bin_s)


def apart(a: Sequence[int], b: Sequence[int], since_us: int, bin_s: float = BIN_S) -> bool:
    """Whether two rates that moved together up to ``since_us`` (when a link was made on them) fell
    apart after it: the link was a hypothesis from the rates before; the rates after test it.

    Apart when one goes on failing for :data:`ALONE_S` after the other fell silent (past the
    longest lag), or when both go on failing and their rates after ``since_us`` correlate below
    :data:`APART_R`.  Anything else — both quiet, too few symptoms to tell — keeps the link."""
    grace = int(MAX_LAG_BINS * bin_s * _US)
    after_a, after_b = [t for t in a if t > since_us], [t for t in b if t > since_us]
    for mine, other in ((after_a, after_b), (after_b, after_a)):
        quiet_from = (max(other) if other else since_us) + grace
        alone = [t for t in mine if t > quiet_from]
        if _busy(alone, bin_s) and max(alone) - quiet_from >= ALONE_S * _US:
            return True
    if _busy(after_a, bin_s) and _busy(after_b, bin_s):
        found = co_movement(after_a, after_b, bin_s)
        return found is not None and found[0] < APART_R
    return False


def _busy(times: Sequence[int], bin_s: float) -> bool:
    width = int(bin_s * _US)
    return len(times) >= MIN_SIGNALS and len({t // width for t in times}) >= MIN_BINS
