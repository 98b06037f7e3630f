"""Incidents split when the evidence that joined them falls apart.

Pure.  Most links cannot fall apart: a shared trace id, a service named in a message, a
call edge or an entity token stay true.  A link that rested on two services' symptom
rates moving together (:data:`~.incident_state.RATE_LINK`) can: the rates are re-tested
on what the two services did after the link was made (:func:`~.lagrate.apart`), and the
edge is cut when they fell apart.  If that leaves a part of the incident no
longer connected to the part that holds its oldest service, the part splits off as a new
open incident: the old one keeps its id, both record the split (``split_into`` /
``split_from``), and the new id is derived from the old one and the part's first signal,
so a replay splits alike.
"""

from __future__ import annotations

from stream_processors.correlate.incident_state import IncidentState, incident_id
from stream_processors.correlate.lagrate import apart

RETEST_EVERY = 10  # an incident with links that rest on rates re-tests them every 10th symptom


def retest(inc: IncidentState, at_us: int) -> list[IncidentState]:
    """Cut ``inc``'s rate edges whose rates fell apart; return the incidents that split off (changed
    in place: ``inc`` loses their services)."""
    out: list[IncidentState] = []
    for a, b in inc.rate_links():
        if a not in inc.services or b not in inc.services:
            continue
        since = int(inc.links[f"{a}|{b}"][2])  # when the edge was made (IncidentState.link keeps it)
        if not apart(inc.symptom_times(a), inc.symptom_times(b), since):
            continue
        del inc.links[f"{a}|{b}"]
        inc.changes += 1
        side_a = reach(inc, a)
        if b in side_a:
            continue
        side_b = reach(inc, b)
        oldest = min(inc.services, key=lambda n: (inc.services[n].first_us, n))
        if oldest in side_a or oldest in side_b:
            part = side_b if oldest in side_a else side_a
        else:  # the oldest joined by a reason the graph does not draw (a trace): the smaller part goes
            part = min(side_a, side_b, key=lambda side: (len(side), sorted(side)))
        rows = sorted((int(r[0]), str(r[1])) for r in inc.evidence if r[4] in part)
        seed = rows[0][1] if rows else "|".join(sorted(part))
        out.append(inc.split_off(part, incident_id(f"split:{inc.id}:{seed}"), at_us))
    return out


def reach(inc: IncidentState, start: str) -> set[str]:
    """The incident's services that ``start`` reaches over its correlation graph (itself included)."""
    edges: dict[str, set[str]] = {}
    for key in inc.links:
        a, b = key.split("|", 1)
        edges.setdefault(a, set()).add(b)
        edges.setdefault(b, set()).add(a)
    seen, todo = {start}, [start]
    while todo:
        for n in edges.get(todo.pop(), ()):
            if n not in seen and n in inc.services:
                seen.add(n)
                todo.append(n)
    return seen
