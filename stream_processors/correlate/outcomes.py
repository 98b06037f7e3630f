"""What people recorded about past incidents, as success counts per fingerprint and remediation.

Pure; part of the correlator's global state (``correlate:global``, key ``out``).  The correlate
step remembers the fingerprint and root cause of every incident it publishes
(:meth:`Outcomes.published`, the newest :data:`MAX_INCIDENTS`), and takes the verdicts on the
compacted ``seismo.feedback`` topic (``seismo feedback``, the gateway's ``record_feedback``):
the latest verdict per incident counts (:meth:`Outcomes.verdict`).  A verdict names the
remediation that was tried (its action, e.g. ``undo the last rollout``, or its command):

* ``resolved_by_remediation`` counts as *resolved* for that action;
* ``resolved_otherwise`` and ``still_open`` count as *not helpful* for it;
* ``false_positive`` and ``duplicate`` say nothing about a remediation and count for none.

:meth:`Outcomes.tally` gives ``{"fingerprint|action": (resolved, not_helpful)}``, which
:func:`~stream_processors.correlate.remediation.suggest` turns into a success probability
(Laplace-smoothed share resolved) for the next incident with the same fingerprint.  A verdict
on an incident this step never published (older than the memory, or a typo) is kept out of
the counts and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from stream_processors.correlate.remediation import LIBRARY

log = logging.getLogger(__name__)
MAX_INCIDENTS = 20_000
_RESOLVED = "resolved_by_remediation"
_NOT_HELPFUL = frozenset({"resolved_otherwise", "still_open"})


def action_of(remediation: str, root: str) -> str | None:
    """The library action a verdict's ``remediation`` text names: the action itself (any case), a
    suggestion as the gateway shows it (``[risk] command``), or the bare command for ``root``."""
    text = remediation.strip().lower()
    if not text:
        return None
    for t in LIBRARY:
        if text == t.action.lower():
            return t.action
    if text.startswith("[") and "] " in text:
        text = text.split("] ", 1)[1]
    for t in LIBRARY:
        if root and text == t.command(root).lower():
            return t.action
    for t in LIBRARY:  # a sentence that names the action ("we did: undo the last rollout")
        if t.action.lower() in text:
            return t.action
    return None


@dataclass
class Outcomes:
    incidents: dict[str, list[str]] = field(default_factory=dict)  # incident id → [fingerprint, root]
    verdicts: dict[str, list[Any]] = field(default_factory=dict)  # incident id → [fp, action, resolved 1/0]
    _tally: dict[str, tuple[int, int]] | None = None

    def published(self, incident_id: str, fingerprint: str, root: str) -> None:
        """Remember what an incident was published as (its latest fingerprint wins)."""
        if self.incidents.get(incident_id) == [fingerprint, root]:
            return
        self.incidents.pop(incident_id, None)
        self.incidents[incident_id] = [fingerprint, root]
        while len(self.incidents) > MAX_INCIDENTS:
            del self.incidents[next(iter(self.incidents))]

    def verdict(self, record: dict[str, Any]) -> bool:
        """Take one ``seismo.feedback`` record (plain Avro dict); True when the counts changed."""
        iid = str(record.get("incident_id") or "")
        known = self.incidents.get(iid)
        before = self.verdicts.pop(iid, None)
        outcome, remediation = str(record.get("outcome") or ""), str(record.get("remediation") or "")
        if known is None:
            log.warning("feedback on %s: no incident by that id in the correlator's memory; not counted", iid)
            return before is not None
        fp, root = known
        action = action_of(remediation, root)
        if action is not None and (outcome == _RESOLVED or outcome in _NOT_HELPFUL):
            self.verdicts[iid] = [fp, action, int(outcome == _RESOLVED)]
            while len(self.verdicts) > MAX_INCIDENTS:
                del self.verdicts[next(iter(self.verdicts))]
        elif remediation and action is None:
            log.warning("feedback on %s names a remediation Seismo does not suggest (%r); not counted",
                        iid, remediation[:80])
        changed = self.verdicts.get(iid) != before
        if changed:
            self._tally = None
        return changed

    def tally(self) -> dict[str, tuple[int, int]]:
        """``{"fingerprint|action": (resolved, not_helpful)}`` over the latest verdicts."""
        if self._tally is None:
            counts: dict[str, list[int]] = {}
            for fp, action, good in self.verdicts.values():
                row = counts.setdefault(f"{fp}|{action}", [0, 0])
                row[0 if good else 1] += 1
            self._tally = {k: (v[0], v[1]) for k, v in counts.items()}
        return self._tally

    def to_json(self) -> dict[str, Any]:
        return {"inc": self.incidents, "v": self.verdicts}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcomes:
        return cls({str(k): [str(x) for x in v] for k, v in data.get("inc", {}).items()},
                   {str(k): [str(v[0]), str(v[1]), int(v[2])] for k, v in data.get("v", {}).items()})
