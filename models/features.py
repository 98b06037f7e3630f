"""Streaming features of one metric series: value, delta, rolling stats, seasonality.

Every feature of point *t* depends only on points ``<= t`` (no look-ahead).  The
seasonal residuals compare the value with an exponentially weighted mean of the
same hour-of-day (and the same hour-of-week) bucket seen so far; they appear only
once their bucket holds ``min_bucket_samples`` values, so consumers must accept
features that come and go.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime

from models.base import Features
from models.state import DataState, Document, StateError, floats, pack, text_keys, unpack

VALUE = "value"
DELTA = "delta"
MEAN_SHORT = "mean_short"
STD_SHORT = "std_short"
SEASON_DAY = "season_day"
SEASON_WEEK = "season_week"
HOUR_SIN = "hour_sin"
HOUR_COS = "hour_cos"


class _Buckets:
    """Exponentially weighted means with sample counts (bias-free start), one per bucket.

    Flat lists rather than one object per bucket: a featurizer has 192 buckets, and thousands
    of restored series would otherwise be hundreds of thousands of small objects.
    """

    __slots__ = ("alpha", "counts", "means")

    def __init__(self, alpha: float = 0.0, size: int = 0) -> None:  # defaults: see RollingWindow
        self.alpha = alpha
        self.counts = [0] * size
        self.means = [0.0] * size

    def update(self, key: int, value: float) -> None:
        count = self.counts[key] = self.counts[key] + 1
        rate = max(self.alpha, 1.0 / count)
        self.means[key] += rate * (value - self.means[key])

    def dump(self) -> Document:
        return {"counts": list(self.counts), "means": pack(self.means)}

    def load(self, doc: Document) -> None:
        counts, means = doc["counts"], unpack(doc["means"]).tolist()
        size = len(self.counts)
        if len(counts) != size or len(means) != size:
            raise StateError(f"{len(counts)} seasonal counts and {len(means)} means for {size} buckets")
        if not all(type(c) is int and c >= 0 for c in counts):
            raise StateError("a seasonal count is not a whole number")
        self.counts, self.means = counts, means


class MetricFeaturizer(DataState):
    """Turn ``(timestamp, value)`` into a feature dict, one point at a time.

    ``transform_one`` returns the features of the point and then absorbs it; it is
    the only method with side effects.  Non-finite values are replaced by the last
    finite one so a missing sample never poisons the rolling statistics.
    """

    def __init__(
        self,
        short_window: int = 6,
        season_alpha: float = 0.1,
        min_bucket_samples: int = 3,
    ) -> None:
        self.short_window = short_window
        self.season_alpha = season_alpha
        self.min_bucket_samples = min_bucket_samples
        self._recent: deque[float] = deque(maxlen=short_window)
        self._day = _Buckets(season_alpha, 24)
        self._week = _Buckets(season_alpha, 7 * 24)

    STATE_FORMAT = "seismo.metric_featurizer"

    def _dump_state(self) -> Document:
        return {"recent": list(self._recent), "day": self._day.dump(), "week": self._week.dump()}

    def _load_state(self, state: Document) -> None:
        recent = floats(state["recent"])
        if len(recent) > self.short_window:
            raise StateError(f"{len(recent)} recent values for a window of {self.short_window}")
        day, week = _Buckets(self.season_alpha, 24), _Buckets(self.season_alpha, 7 * 24)
        day.load(text_keys(state["day"]))
        week.load(text_keys(state["week"]))
        self._recent = deque(recent, maxlen=self.short_window)
        self._day, self._week = day, week

    def transform_one(self, timestamp: datetime, value: float) -> Features:
        if not math.isfinite(value):
            value = self._recent[-1] if self._recent else 0.0
        previous = self._recent[-1] if self._recent else value
        self._recent.append(value)
        n = len(self._recent)
        mean = sum(self._recent) / n
        var = sum((v - mean) ** 2 for v in self._recent) / n
        angle = 2.0 * math.pi * (timestamp.hour + timestamp.minute / 60.0) / 24.0
        x: Features = {
            VALUE: value,
            DELTA: value - previous,
            MEAN_SHORT: mean,
            STD_SHORT: math.sqrt(var),
            HOUR_SIN: math.sin(angle),
            HOUR_COS: math.cos(angle),
        }
        day_key = timestamp.hour
        week_key = timestamp.weekday() * 24 + timestamp.hour
        for name, table, key in ((SEASON_DAY, self._day, day_key), (SEASON_WEEK, self._week, week_key)):
            if table.counts[key] >= self.min_bucket_samples:
                x[name] = value - table.means[key]
            table.update(key, value)
        return x
