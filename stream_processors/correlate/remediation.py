"""Remediation suggestions from a template library.  Seismo suggests; it never runs anything.

Pure.  Each template matches an incident's evidence (a deploy of the root cause, a
crash loop, OOM kills, pool exhaustion, an expired certificate, node saturation, a
firing alarm) and yields a :class:`~schemas.models.RemediationSuggestion` with the
exact command, its risk class (``read-only`` / ``reversible`` / ``destructive``), the
preconditions to check first, a validation step, and a success probability: the share
of past incidents with the same fingerprint where a person recorded it as resolving
(``seismo feedback``), else the template's prior.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from schemas.models import RemediationSuggestion
from stream_processors.correlate.incident_state import IncidentState

NAMESPACE = "prod"


@dataclass(frozen=True)
class Template:
    action: str
    risk: str
    pattern: re.Pattern[str]
    command: Callable[[str], str]
    preconditions: tuple[str, ...]
    validation: Callable[[str], str]
    prior: float


def _t(action: str, risk: str, pattern: str, command: Callable[[str], str], pre: tuple[str, ...],
       validation: Callable[[str], str], prior: float) -> Template:
    return Template(action, risk, re.compile(pattern, re.I), command, pre, validation, prior)


LIBRARY: tuple[Template, ...] = (
    _t("inspect rollout history", "read-only", r"deploy|release|rolled|CrashLoopBackOff",
       lambda s: f"kubectl rollout history deployment/{s} -n {NAMESPACE}", (),
       lambda s: "the revision before the incident's onset is identified", 0.9),
    _t("undo the last rollout", "reversible", r"deploy|release|CrashLoopBackOff",
       lambda s: f"kubectl rollout undo deployment/{s} -n {NAMESPACE}",
       ("a rollout of this service happened shortly before the onset", "the previous revision was healthy",
        "no schema migration shipped with the rollout"),
       lambda s: f"kubectl rollout status deployment/{s} -n {NAMESPACE} && error rate back to baseline", 0.7),
    _t("restart the pods", "reversible", r"OOMKilled|memory|CrashLoopBackOff|connection reset",
       lambda s: f"kubectl rollout restart deployment/{s} -n {NAMESPACE}",
       ("more than one replica is running, so the restart is rolling",),
       lambda s: f"kubectl get pods -n {NAMESPACE} -l app={s} shows Running, restarts not growing", 0.5),
    _t("scale out", "reversible", r"pool exhausted|DatabaseConnections|latency|throttl|timeout",
       lambda s: f"kubectl scale deployment/{s} -n {NAMESPACE} --replicas=<current+2>",
       ("the database accepts the extra connections", "the cluster has spare capacity"),
       lambda s: "p95 latency and pool waiters fall within 5 minutes", 0.4),
    _t("check the certificate", "read-only", r"certificate|SSLError|TLS",
       lambda s: f"kubectl describe certificate {s}-tls -n {NAMESPACE}", (),
       lambda s: "the failing ACME challenge or issuer is named", 0.9),
    _t("renew the certificate", "reversible", r"certificate|SSLError",
       lambda s: f"cmctl renew {s}-tls -n {NAMESPACE}", ("the issuer is reachable",),
       lambda s: f"kubectl get certificate {s}-tls -n {NAMESPACE} shows READY=True", 0.7),
    _t("move the noisy workload", "destructive", r"Saturation|throttling",
       lambda s: f"kubectl delete pod -n {NAMESPACE} -l app={s}",
       ("the service tolerates losing its pods on this node", "another node has capacity"),
       lambda s: "node CPU below 80% and the neighbour's latency alarm back to OK", 0.5),
    _t("read the alarm history", "read-only", r"ALARM",
       lambda s: f"aws cloudwatch describe-alarm-history --alarm-name-prefix {s} --max-items 20", (),
       lambda s: "the first ALARM transition matches the incident's onset", 0.9),
)


def suggest(inc: IncidentState, root: str, outcomes: Mapping[str, tuple[int, int]] | None = None,
            fingerprint: str = "") -> list[RemediationSuggestion]:
    """Suggestions for ``root`` matching the incident's evidence; ``outcomes`` maps
    ``fingerprint|action`` to (resolved, not helpful) counts from recorded feedback."""
    text = " ".join(str(r[6]) for r in inc.evidence if r[4] == root) + " " + " ".join(
        str(d[2]) for d in inc.deploys if d[1] == root)
    out = []
    for t in LIBRARY:
        if not t.pattern.search(text):
            continue
        good, bad = (outcomes or {}).get(f"{fingerprint}|{t.action}", (0, 0))
        if good + bad:
            p = (good + 1) / (good + bad + 2)
            basis = f"{good} resolved, {bad} not helpful for this fingerprint"
        else:
            p, basis = t.prior, "prior of the template (no recorded outcome yet)"
        out.append(RemediationSuggestion(
            action=t.action, risk=t.risk, command=t.command(root), preconditions=list(t.preconditions),
            validation=t.validation(root), success_probability=round(p, 3), basis=basis,
        ))
    order = {"read-only": 0, "reversible": 1, "destructive": 2}
    out.sort(key=lambda r: (order[r.risk], -r.success_probability, r.action))
    return out[:5]
