"""Scoring incidents against a simulation's ground truth (used by ``bench/correlation.py``).

* **pairwise grouping precision/recall/F1** over the *signal events*: every event that
  is a symptom by the correlator's own definition (error/alert kinds, error/critical
  severity, Kubernetes warning events) plus every event any incident holds as evidence.
  A pair is a true positive when both events are in one predicted incident and one
  injected incident; noise events (no injected incident) in an incident are false pairs.
* **RCA@k**: per injected incident, the predicted incident holding most of its signal
  events; hit when the injected root cause is among its first k candidates.
* **onset → open delay**: the earliest ``detected_at`` of the incidents holding its signals minus
  the injected incident's
  onset, in event time: its first error-level signal (an error/alert event, or severity
  error/critical).  Also reported from its first signal of any level (a Kubernetes warning
  such as a failed certificate renewal can come minutes before anything fails).
* **noise share**: predicted incidents (not merged away) holding no injected event.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from schemas.models import Event, Incident
from stream_processors.correlate.signals import SignalKind, kind_of


def is_signal(e: Event) -> bool:
    k = kind_of(e.kind.value, e.severity.value, e.message, e.attributes)
    return k is SignalKind.SYMPTOM


def _pairs(groups: Iterable[int]) -> int:
    return sum(n * (n - 1) // 2 for n in groups)


def score(events: Sequence[Event], truth: Mapping[str, Any], incidents: Sequence[Incident]) -> dict[str, Any]:
    owner: dict[str, str] = {}
    roots: dict[str, str] = {}
    for iid, fault in truth["incidents"].items():
        roots[iid] = fault["root_cause"]
        for eid in fault["event_ids"]:
            owner[eid] = iid
    live = [i for i in incidents if not i.merged_into]
    predicted: dict[str, str] = {}
    for inc in sorted(live, key=lambda i: (i.opened_at, i.id)):
        for ev in inc.evidence:
            predicted.setdefault(ev.event_id, inc.id)
    by_id = {e.id: e for e in events}
    universe = {e.id for e in events if is_signal(e)} | {k for k in predicted if k in by_id}
    both = Counter((owner[u], predicted[u]) for u in universe if u in owner and u in predicted)
    pred_sizes = Counter(predicted[u] for u in universe if u in predicted)
    true_sizes = Counter(owner[u] for u in universe if u in owner)
    tp = _pairs(both.values())
    precision = tp / max(1, _pairs(pred_sizes.values()))
    recall = tp / max(1, _pairs(true_sizes.values()))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    at1 = at3 = 0
    delays: list[float] = []
    early: list[float] = []
    by_inc = {i.id: i for i in live}
    for iid in truth["incidents"]:
        overlap = Counter(pid for (tid, pid), n in both.items() if tid == iid for _ in range(n))
        if not overlap:
            continue
        best = by_inc[min(overlap, key=lambda p: (-overlap[p], p))]
        names = [c.service for c in best.root_cause_candidates]
        at1 += names[:1] == [roots[iid]]
        at3 += roots[iid] in names[:3]
        mine = [by_id[u] for u in universe if owner.get(u) == iid and u in by_id]
        severe = [e.timestamp for e in mine if e.is_anomalous]
        opened = min((d for p in overlap if (d := by_inc[p].detected_at) is not None), default=None)
        if severe and opened is not None:  # the first incident holding any of its signals: when someone knew
            delays.append((opened - min(severe)).total_seconds())
            early.append((opened - min(e.timestamp for e in mine)).total_seconds())
    truth_ids = set(owner)
    noise = sum(1 for i in live if not any(ev.event_id in truth_ids for ev in i.evidence))
    n = max(1, len(truth["incidents"]))
    delays.sort()
    early.sort()
    return {
        "precision": precision, "recall": recall, "f1": f1, "rca1": at1 / n, "rca3": at3 / n,
        "delay_p50": statistics.median(delays) if delays else float("nan"),
        "delay_p95": delays[min(len(delays) - 1, int(0.95 * len(delays)))] if delays else float("nan"),
        "noise": noise / max(1, len(live)), "incidents": len(live), "injected": len(truth["incidents"]),
        "found": len(delays), "delays": delays, "early": early,
        "early_p95": early[min(len(early) - 1, int(0.95 * len(early)))] if early else float("nan"),
    }


def pooled(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Figures over several seeds: means of the ratios weighted by injected incidents, pooled delays."""
    total = sum(r["injected"] for r in results) or 1
    out: dict[str, Any] = {k: sum(r[k] * r["injected"] for r in results) / total
                           for k in ("precision", "recall", "f1", "rca1", "rca3")}
    delays = sorted(d for r in results for d in r["delays"])
    out["delay_p50"] = statistics.median(delays) if delays else float("nan")
    out["delay_p95"] = delays[min(len(delays) - 1, int(0.95 * len(delays)))] if delays else float("nan")
    early = sorted(d for r in results for d in r["early"])
    out["early_p95"] = early[min(len(early) - 1, int(0.95 * len(early)))] if early else float("nan")
    incidents = sum(r["incidents"] for r in results)
    out["noise"] = sum(r["noise"] * r["incidents"] for r in results) / max(1, incidents)
    out["incidents"], out["injected"] = incidents, sum(r["injected"] for r in results)
    return out
