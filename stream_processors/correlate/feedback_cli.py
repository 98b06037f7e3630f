"""``seismo feedback ID --outcome resolved|not-helpful``: a person's verdict on an incident.

Written to the compacted ``seismo.feedback`` topic (key = incident id) through the same
writer the gateway's ``record_feedback`` uses, so the latest verdict per incident wins.
The success probability of a remediation suggestion (:mod:`.remediation`) is the share of
verdicts "resolved" among those recorded for incidents with the same fingerprint.
Blocks until the broker acknowledged the record; exit 1 when it does not answer.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer

feedback_app = typer.Typer(  # one command, as a group's callback: options may follow the incident id
    help="Record whether an incident's suggestion resolved it (kept on seismo.feedback).",
    context_settings={"allow_interspersed_args": True},
)


class Verdict(StrEnum):
    resolved = "resolved"
    not_helpful = "not-helpful"


@feedback_app.callback(invoke_without_command=True)
def feedback(
    incident_id: Annotated[str, typer.Argument(help="The incident id (inc-…) `seismo incidents` shows.")],
    outcome: Annotated[Verdict, typer.Option(help="resolved: the suggestion fixed it; not-helpful: not.")],
    remediation: Annotated[str | None, typer.Option(
        help="Which suggestion was tried (its action, e.g. 'undo the last rollout', or its command); "
        "without it the verdict counts toward no suggestion's success probability.")] = None,
    root_cause: Annotated[str | None, typer.Option(help="The service that really caused it.")] = None,
    note: Annotated[str, typer.Option(help="Free text kept with the verdict.")] = "",
) -> None:
    """Record a verdict on an incident (what Seismo suggested helped, or not)."""
    from mcp_gateway.errors import RecoverableError
    from mcp_gateway.feedback import FeedbackLog, feedback_topic
    from schemas.feedback import Feedback, Outcome
    from seismo.cliutil import console, fail, settings

    s = settings()
    verdict = Feedback(
        incident_id=incident_id,
        outcome=(Outcome.RESOLVED_BY_REMEDIATION if outcome is Verdict.resolved
                 else Outcome.RESOLVED_OTHERWISE),
        remediation=remediation, root_cause_service=root_cause, note=note,
        recorded_by=f"cli:{getpass.getuser()}", recorded_at=datetime.now(UTC),
    )
    log = FeedbackLog(s.bootstrap, feedback_topic(s.topic_prefix))
    try:
        log.record(verdict)
    except RecoverableError as exc:
        raise fail(f"{exc} (Kafka at {s.bootstrap})") from None
    console.print(f"recorded: {incident_id} {outcome.value} on {log.topic}", highlight=False)
