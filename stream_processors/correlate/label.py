"""The deterministic label of an incident: a title and summary naming root cause, symptom, blast radius.

Pure.  Always available; an LLM label (:mod:`.llm`), when configured, replaces it only
where its quality score is at least as high.  :func:`quality` is the share of checks a
title passes: it names the top root-cause candidate, and it names the dominant symptom
(a distinctive word of the most frequent template).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stream_processors.correlate.incident_state import IncidentState
from stream_processors.correlate.rank import Candidate

_WORDS = re.compile(r"[A-Za-z][A-Za-z_]{3,}")
_STOP = frozenset({"from", "with", "that", "this", "within", "after", "calling", "error", "errors",
                   "failed", "returned", "true", "false", "none", "null"})


@dataclass(frozen=True)
class Label:
    title: str
    summary: str
    quality: float


def dominant_template(inc: IncidentState) -> str:
    if not inc.templates:
        first = min(inc.services.values(), key=lambda f: f.first_us, default=None)
        return first.example if first is not None else ""
    tid = min(inc.templates, key=lambda t: (-inc.templates[t], t))
    return inc.template_text.get(tid, "")


def key_words(text: str) -> list[str]:
    """Distinctive words of a template (placeholders and common words left out)."""
    return [w for w in _WORDS.findall(text) if w.lower() not in _STOP and not w.isupper()][:6]


def quality(title: str, root: str | None, symptom: str) -> float:
    checks = [bool(root) and str(root) in title]
    words = key_words(symptom)
    checks.append(not words or any(w in title for w in words))
    return sum(checks) / len(checks)


def fallback(inc: IncidentState, candidates: list[Candidate]) -> Label:
    root = candidates[0].service if candidates else (sorted(inc.services) or ["?"])[0]
    symptom = dominant_template(inc).strip() or "anomalous signals"
    others = sorted(s for s in inc.services if s != root)
    radius = f"{len(inc.services)} service{'s' if len(inc.services) != 1 else ''}"
    sources = sorted({src for f in inc.services.values() for src in f.sources})
    change = next((d for d in inc.deploys if str(d[1]) == root), None)
    cause = f" after {str(change[2])[:60]!r}" if change is not None else ""
    title = f"{root}{cause}: {symptom[:90]}"
    if others:
        title += f" (also {', '.join(others[:3])}{' …' if len(others) > 3 else ''})"
    lines = [f"Likely root cause: {root}" + (f" — {candidates[0].reason}" if candidates else "") + "."]
    lines.append(f"Symptom: {symptom[:160]} ({inc.count} signals).")
    lines.append(f"Blast radius: {radius} ({', '.join(sorted(inc.services))}) seen by "
                 f"{', '.join(sources) or 'no source'}.")
    return Label(title[:200], " ".join(lines)[:1000], quality(title, root, symptom))
