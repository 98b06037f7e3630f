"""What the score step remembers about one service (:class:`ServiceScore`), and its settings.

A :class:`ServiceScore` lives in memory between events and is saved as JSON (``to_json``) in the
StateStore under ``score:{service}``; the rules that fold events into it are in
:mod:`stream_processors.score.scorer`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from models.features_events import Baseline, Window
from models.series import MetricDetector
from models.state import StateError

STATE_FORMAT = "seismo.score_service"
STATE_VERSION = 2
"""Version 1 (before 2026-12) had no ``format`` and held each metric detector as a
base64 pickle; version 2 holds the detector's JSON document (:mod:`models.state`)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreConfig:
    window_s: float = 60.0
    lateness_s: float = 10.0
    z_threshold: float = 6.0
    novelty_threshold: float = 0.5
    probation_windows: int = 5
    min_count: int = 5
    min_window_events: int = 5
    error_rate_floor: float = 0.05
    baseline_windows: int = 30
    max_remembered_ids: int = 10_000
    seed: int = 0


@dataclass
class ServiceScore:
    """Everything the scorer remembers about one service.

    Lives in memory between events (detectors stay decoded); :meth:`to_json`
    gives the StateStore value, with each metric detector's state as a JSON
    document (:meth:`models.state.DataState.to_state`, re-encoded only when it
    learned something) and decoded on first use.  A document that cannot be
    restored is logged and its series starts a fresh baseline.  ``version``
    grows with every change, so a caller can tell whether to save.

    A template's baseline takes the zero counts of the windows it was absent from
    lazily: ``_synced[tid]`` is the ``windows_closed`` its baseline is complete up to,
    and :meth:`baseline` (or :meth:`to_json`) pushes the zeros it is owed.  Pushing
    ``n`` zeros at once equals pushing them one window at a time, so the values (and
    the saved state) are those of the eager push; a window close then costs the
    templates that occurred in it, not every template the service ever showed.
    """

    service: str
    watermark_us: int = 0
    closed_until_us: int = 0  # end of the last closed window
    floor_us: int = 0  # events older than this are ignored (late)
    windows_closed: int = 0
    windows: dict[int, Window] = field(default_factory=dict)
    templates: dict[str, Baseline] = field(default_factory=dict)
    error_rates: Baseline = field(default_factory=lambda: Baseline(30))
    metric_last_us: dict[str, int] = field(default_factory=dict)
    remembered: dict[str, int] = field(default_factory=dict)  # event id -> ts_us, arrival order
    late: int = 0  # events ignored as late by this process (not saved)
    version: int = 0
    _blobs: dict[str, object] = field(default_factory=dict)  # saved detector documents
    _detectors: dict[str, MetricDetector] = field(default_factory=dict)
    _dirty: set[str] = field(default_factory=set)
    _synced: dict[str, int] = field(default_factory=dict)  # template id -> windows_closed it holds

    def baseline(self, tid: str) -> Baseline:
        """The baseline of template ``tid`` with every closed window pushed."""
        baseline = self.templates[tid]
        closed = self.windows_closed
        owed = closed - self._synced.get(tid, closed)
        if owed:
            baseline.push_zeros(owed)
            self._synced[tid] = closed
        return baseline

    def add_template(self, tid: str, size: int) -> None:
        """A template first seen now: an empty baseline, owed nothing yet."""
        self.templates[tid] = Baseline(size)
        self._synced[tid] = self.windows_closed

    def detector(self, name: str, seed: int) -> MetricDetector:
        det = self._detectors.get(name)
        if det is None:
            det = self._detectors[name] = MetricDetector(seed)
            # the decoded document is not kept: the detector is dirty from here on, so
            # ``to_json`` writes it afresh (and a restored worker holds each state once)
            doc = self._blobs.pop(name, None)
            if doc is not None:
                try:
                    det.from_state(doc)
                except StateError as exc:
                    log.error("saved detector of %s metric %r is unusable (%s); "
                              "the series starts a fresh baseline", self.service, name, exc)
                    det = self._detectors[name] = MetricDetector(seed)
        self._dirty.add(name)
        return det

    def to_json(self) -> dict[str, Any]:
        for tid in self.templates:
            self.baseline(tid)  # every owed zero pushed: the state saved is the eager one
        for name in self._dirty:
            self._blobs[name] = self._detectors[name].to_state()
        self._dirty.clear()
        return {
            "format": STATE_FORMAT, "format_version": STATE_VERSION,
            "service": self.service, "watermark_us": self.watermark_us,
            "closed_until_us": self.closed_until_us, "floor_us": self.floor_us,
            "windows_closed": self.windows_closed,
            "windows": [w.to_json() for w in self.windows.values()],
            "templates": {k: b.values for k, b in self.templates.items()},
            "error_rates": self.error_rates.values,
            "metrics": {k: [self.metric_last_us[k], self._blobs[k]] for k in self.metric_last_us},
            "remembered": self.remembered,  # a JSON object keeps its order
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], cfg: ScoreConfig) -> ServiceScore:
        """The state :meth:`to_json` wrote; raises KeyError, TypeError or ValueError when malformed.

        Detector documents are checked when first used (:meth:`detector`)."""
        data = _migrate(data)
        size = cfg.baseline_windows
        windows = [Window.from_json(w) for w in data["windows"]]
        closed = int(data["windows_closed"])
        templates = {k: Baseline(size, [float(x) for x in v]) for k, v in data["templates"].items()}
        return cls(
            service=data["service"], watermark_us=int(data["watermark_us"]),
            closed_until_us=int(data["closed_until_us"]), floor_us=int(data["floor_us"]),
            windows_closed=closed, windows={w.start_us: w for w in windows}, templates=templates,
            error_rates=Baseline(size, [float(x) for x in data["error_rates"]]),
            metric_last_us={k: int(v[0]) for k, v in data["metrics"].items()},
            remembered=_remembered(data["remembered"]),
            version=int(data["version"]),
            _blobs={k: v[1] for k, v in data["metrics"].items()},
            _synced=dict.fromkeys(templates, closed),
        )


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` in the current layout; raises ValueError for another format or a newer version."""
    if not isinstance(data, dict):
        raise TypeError(f"a score state is a JSON object, got {type(data).__name__}")
    fmt, version = data.get("format", STATE_FORMAT), data.get("format_version", 1)
    if fmt != STATE_FORMAT or not isinstance(version, int) or version > STATE_VERSION:
        raise ValueError(f"not a {STATE_FORMAT} state of version <= {STATE_VERSION}: {fmt!r} {version!r}")
    if version == 1:
        # Version 1 detectors are pickles: never unpickled (that would run whatever a writer
        # to Redis put there).  Their series keep their last timestamps and relearn a baseline.
        if data["metrics"]:
            log.warning("score state of %s holds %d detectors in the retired pickle format; "
                        "they start fresh baselines", data.get("service"), len(data["metrics"]))
        data = {**data, "metrics": {k: [v[0], None] for k, v in data["metrics"].items()}}
    return data


def _remembered(data: dict[str, int] | list[list[Any]]) -> dict[str, int]:
    if isinstance(data, dict):
        return data
    return {str(k): int(v) for k, v in data}  # states saved before 2026-11 held [id, ts] pairs
