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


class _Ewma:
    """Exponentially weighted mean with a sample count (bias-free start)."""

    __slots__ = ("alpha", "count", "mean")

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.count = 0
        self.mean = 0.0

    def update(self, value: float) -> None:
        self.count += 1
        rate = max(self.alpha, 1.0 / self.count)
        self.mean += rate * (value - self.mean)


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
        self._day: dict[int, _Ewma] = {}
        self._week: dict[int, _Ewma] = {}

    STATE_FORMAT = "seismo.metric_featurizer"

    def _dump_state(self) -> Document:
        def buckets(table: dict[int, _Ewma]) -> Document:
            return {"keys": list(table), "counts": [e.count for e in table.values()],
                    "means": pack([e.mean for e in table.values()])}

        return {"recent": list(self._recent), "day": buckets(self._day), "week": buckets(self._week)}

    def _load_state(self, state: Document) -> None:
        def buckets(doc: Document, size: int) -> dict[int, _Ewma]:
            keys, counts, means = doc["keys"], doc["counts"], unpack(doc["means"]).tolist()
            if not len(keys) == len(counts) == len(means):
                raise StateError("seasonal buckets of different lengths")
            table: dict[int, _Ewma] = {}
            alpha = self.season_alpha
            for key, count, mean in zip(keys, counts, means, strict=True):
                if type(key) is not int or not 0 <= key < size or type(count) is not int:
                    raise StateError(f"seasonal bucket {key!r} (count {count!r}) outside 0..{size - 1}")
                bucket = table[key] = _Ewma(alpha)
                bucket.count, bucket.mean = count, mean
            return table

        recent = floats(state["recent"])
        if len(recent) > self.short_window:
            raise StateError(f"{len(recent)} recent values for a window of {self.short_window}")
        day, week = buckets(text_keys(state["day"]), 24), buckets(text_keys(state["week"]), 7 * 24)
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
            bucket = table.get(key)
            if bucket is None:
                bucket = table[key] = _Ewma(self.season_alpha)
            if bucket.count >= self.min_bucket_samples:
                x[name] = value - bucket.mean
            bucket.update(value)
        return x
