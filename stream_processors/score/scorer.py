"""The score step: one service's enriched events become :class:`~schemas.models.Anomaly` records.

Pure and deterministic in event time: :meth:`Scorer.apply` folds one event into
the service's :class:`ServiceScore` and returns the anomalies it revealed.  It is
idempotent per event id (an at-least-once redelivery changes nothing), and the
same events in the same order always give the same anomalies with the same ids.

Signals, per service:

* **metric** — each ``(service, metric name)`` series goes through its own
  :class:`models.series.MetricDetector`; an anomalous ensemble verdict is an anomaly.
  A point not newer than the series' last one is skipped (series are monotonic).
* **template rate** — counts per template in tumbling event-time windows of
  ``window_s``; a window closes once the watermark passes its end by
  ``lateness_s``, and its count is compared with the template's last
  ``baseline_windows`` closed windows (robust z-score, Poisson floor).  Nothing is
  judged before ``probation_windows`` windows of baseline.
* **error rate** — the share of error events (severity ≥ error, or kind
  error/alert) of a closed window, against the same kind of baseline.
* **new template** — the first event of a template the service has never shown,
  with ``novelty ≥ novelty_threshold``, once the service has left probation.

Events older than the service's floor (the end of its last closed window, or
the oldest remembered event id when the id memory overflowed) are ignored and
counted in ``late``: they could be neither windowed nor deduplicated.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from models.features_events import Baseline, Ref, Window, calendar, window_start
from models.series import ScoredPoint
from schemas.models import Anomaly, Event, Severity
from stream_processors.score.observation import Observation
from stream_processors.score.service import STATE_FORMAT, STATE_VERSION, ScoreConfig, ServiceScore

__all__ = ["STATE_FORMAT", "STATE_VERSION", "ScoreConfig", "Scorer", "ServiceScore", "anomaly_id"]

_US = 1_000_000
log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def anomaly_id(event_id: str, signal: str) -> str:
    digest = hashlib.sha1(f"{event_id}\x00{signal}".encode(), usedforsecurity=False)
    return f"an-{digest.hexdigest()[:16]}"


def _fmt(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:.6g}"


class Scorer:
    """Folds events into :class:`ServiceScore` states; see the module docstring for the rules."""

    def __init__(self, cfg: ScoreConfig | None = None) -> None:
        self.cfg = cfg or ScoreConfig()
        self._window_us = int(self.cfg.window_s * _US)
        self._lateness_us = int(self.cfg.lateness_s * _US)

    def new_state(self, service: str) -> ServiceScore:
        return ServiceScore(service, error_rates=Baseline(self.cfg.baseline_windows))

    def load(self, data: Any, service: str | None = None) -> ServiceScore:
        """The saved state ``data``; a state that cannot be read is logged and replaced by a fresh one.

        ``service`` (when given) must match the saved one, so a state filed under
        another key is not adopted either."""
        try:
            state = ServiceScore.from_json(data, self.cfg)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            name = service or (data.get("service") if isinstance(data, dict) else None)
            log.error("saved score state of %s is unusable (%s: %s); the service starts afresh",
                      name, exc.__class__.__name__, exc)
            return self.new_state(name if isinstance(name, str) else "unknown")
        if service is not None and state.service != service:
            log.error("saved score state under %s names service %r; the service starts afresh",
                      service, state.service)
            return self.new_state(service)
        return state

    def apply(self, state: ServiceScore, event: Event | Observation) -> tuple[ServiceScore, list[Anomaly]]:
        """Fold ``event`` into ``state`` (updated in place and returned); return its anomalies."""
        if event.id in state.remembered:
            return state, []
        obs = event if isinstance(event, Observation) else Observation.from_event(event)
        ts = obs.ts_us
        if ts < state.floor_us:
            state.late += 1  # process-local diagnostic: not saved, not a change
            return state, []
        state.version += 1
        state.remembered[event.id] = ts
        state.watermark_us = max(state.watermark_us, ts)
        out: list[Anomaly] = []
        is_metric = obs.is_metric
        tid = None if is_metric else obs.template_id
        if tid is not None and tid not in state.templates:
            out += self._novel(state, obs, tid)
            state.add_template(tid, self.cfg.baseline_windows)
        start = window_start(ts, self._window_us)
        window = state.windows.get(start)
        if window is None:
            window = state.windows[start] = Window(start)
        window.add(tid, obs.is_error, lambda: _ref(obs))
        if is_metric and obs.metric_name is not None:
            out += self._metric(state, obs, ts)
        closed = self._close(state)
        if closed is not None:
            out += closed
            self._forget(state)
        elif len(state.remembered) > self.cfg.max_remembered_ids:
            self._forget(state)
        return state, out

    def _novel(self, state: ServiceScore, obs: Observation, tid: str) -> list[Anomaly]:
        cfg = self.cfg
        novelty = obs.novelty
        if novelty is None or novelty < cfg.novelty_threshold or state.windows_closed < cfg.probation_windows:
            return []
        at = _dt(obs.ts_us)
        explanation: dict[str, float | str] = {
            "novelty": novelty, "novelty_threshold": cfg.novelty_threshold,
            "known_templates": float(len(state.templates)), "template": obs.template or "",
            **calendar(at),
        }
        return [_anomaly(
            _ref(obs), obs.service, at, f"new_template:{tid}", novelty,
            ["template_novelty"], explanation, f"new log template: {obs.template or obs.message}", tid,
        )]

    def _metric(self, state: ServiceScore, obs: Observation, ts: int) -> list[Anomaly]:
        name = obs.metric_name
        assert name is not None
        last = state.metric_last_us.get(name)
        if last is not None and ts <= last:
            return []
        at = _dt(ts)
        point: ScoredPoint = state.detector(name, self.cfg.seed).process(at, obs.metric_value)
        state.metric_last_us[name] = ts
        if not point.is_anomaly or point.explanation is None:
            return []
        why = point.explanation
        explanation: dict[str, float | str] = {
            "value": point.value, "threshold": why.threshold, "fired": ",".join(why.fired),
            **{f"feature.{k}": v for k, v in why.features.items()},
            **{f"baseline.{k}": v for k, v in why.baseline.items()},
            **{f"member.{k}": v for k, v in why.member_scores.items()},
            **calendar(at),
        }
        unit = f" {obs.metric_unit}" if obs.metric_unit else ""
        base = why.baseline.get("value")
        against = f" (baseline {base:.6g}{unit})" if base is not None else ""
        message = f"{name} = {point.value:.6g}{unit}{against}"
        return [_anomaly(
            _ref(obs), obs.service, at, f"metric:{name}", point.score,
            [f"metric.{n}" for n in why.fired] or ["metric.ensemble"], explanation, message,
            None,
        )]

    def _close(self, state: ServiceScore) -> list[Anomaly] | None:
        """Judge every window the watermark has passed; None when none closed."""
        out: list[Anomaly] | None = None
        w_us = self._window_us
        while state.windows:
            start = min(state.windows)
            if start + w_us + self._lateness_us > state.watermark_us:
                break
            window = state.windows.pop(start)
            if state.closed_until_us and start > state.closed_until_us:
                # the templates' baselines take these empty windows lazily (ServiceScore.baseline)
                state.windows_closed += (start - state.closed_until_us) // w_us
            out = [*(out or []), *self._judge(state, window)]
            state.windows_closed += 1
            state.closed_until_us = max(state.closed_until_us, start + w_us)
            state.floor_us = max(state.floor_us, state.closed_until_us)
        return out

    def _judge(self, state: ServiceScore, window: Window) -> list[Anomaly]:
        cfg = self.cfg
        out: list[Anomaly] = []
        end = _dt(window.start_us + self._window_us)

        def when() -> dict[str, float | str]:
            return {"window_start": _dt(window.start_us).isoformat(), "window_end": end.isoformat()}
        counts = window.counts
        if cfg.min_count > 0:  # only a template of the window can fire; the others are owed a zero
            occurred: Iterable[tuple[str, int]] = counts.items()
        else:
            occurred = [(tid, counts.get(tid, 0)) for tid in state.templates]
        templates, synced = state.templates, state._synced
        after = state.windows_closed + 1
        fired: list[tuple[str, Anomaly]] = []
        for tid, count in occurred:
            if tid not in templates:
                continue  # (a hand-edited state) a count the eager loop never saw
            baseline = state.baseline(tid)
            if count >= cfg.min_count and len(baseline.values) >= cfg.probation_windows:
                r = baseline.compare(count, 1.0, counts=True)
                if r.z >= cfg.z_threshold:
                    ref = window.refs[tid]
                    explanation: dict[str, float | str] = {
                        "count": float(count), "baseline_median": r.median, "baseline_scale": r.scale,
                        "baseline_windows": float(r.n), "z": r.z, "z_threshold": cfg.z_threshold,
                        "window_events": float(window.total), **when(), **calendar(end),
                    }
                    message = (
                        f"template burst: {count} in {cfg.window_s:g}s vs median {r.median:g}: {ref.text}"
                    )
                    fired.append((tid, _anomaly(
                        ref, state.service, end, f"template_rate:{tid}", r.z / (r.z + cfg.z_threshold),
                        ["template_rate.robust_z"], explanation, message, tid,
                    )))
            baseline.push(float(count))
            synced[tid] = after
        if len(fired) > 1:  # in the order of the service's templates, as one pass over them gives
            rank = {tid: i for i, tid in enumerate(templates)}
            fired.sort(key=lambda item: rank[item[0]])
        out += [anomaly for _, anomaly in fired]
        if window.total >= cfg.min_window_events:
            rate = window.error_rate
            r = state.error_rates.compare(rate, cfg.error_rate_floor)
            first = window.first_error
            judged = len(state.error_rates) >= cfg.probation_windows and window.errors >= cfg.min_count
            if judged and first is not None and r.z >= cfg.z_threshold:
                explanation = {
                    "error_rate": rate, "errors": float(window.errors), "events": float(window.total),
                    "baseline_median": r.median, "baseline_scale": r.scale, "baseline_windows": float(r.n),
                    "z": r.z, "z_threshold": cfg.z_threshold, **when(), **calendar(end),
                }
                message = (
                    f"error rate {rate:.0%} ({window.errors}/{window.total}) in {cfg.window_s:g}s "
                    f"vs median {r.median:.0%}; first: {first.text}"
                )
                out.append(_anomaly(
                    first, state.service, end, "error_rate", r.z / (r.z + cfg.z_threshold),
                    ["error_rate.robust_z"], explanation, message, None,
                ))
            state.error_rates.push(rate)
        return out

    def _forget(self, state: ServiceScore) -> None:
        remembered = state.remembered
        if len(remembered) > self.cfg.max_remembered_ids:
            while len(remembered) > self.cfg.max_remembered_ids:
                oldest = next(iter(remembered))
                state.floor_us = max(state.floor_us, remembered.pop(oldest) + 1)
        # ids below the floor are never looked up again (their events are ignored as late)
        floor = state.floor_us
        state.remembered = {k: v for k, v in remembered.items() if v >= floor}


def _ref(obs: Observation) -> Ref:
    text = obs.template or obs.message
    return Ref(obs.id, obs.source, obs.kind, obs.severity, text[:200])


def _anomaly(
    ref: Ref,
    service: str,
    at: datetime,
    signal: str,
    score: float,
    detectors: list[str],
    explanation: dict[str, float | str],
    message: str,
    template_id: str | None,
) -> Anomaly:
    severity = max(Severity(ref.severity), Severity.WARNING, key=lambda s: s.rank)
    return Anomaly(
        id=anomaly_id(ref.event_id, signal), event_id=ref.event_id, service=service, source=ref.source,
        kind=ref.kind, severity=severity, timestamp=at, score=min(max(score, 0.0), 1.0), signal=signal,
        detectors=detectors, explanation={k: _fmt(v) for k, v in explanation.items()},
        message=message[:500], template_id=template_id,
    )
