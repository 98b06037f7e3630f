"""``seismo feedback ID --outcome …`` writes the verdict to the compacted feedback topic (real broker)."""

from __future__ import annotations

import pytest

from schemas.codec import codec_for
from schemas.feedback import Feedback, Outcome
from tests.kafka_utils import Env, read_topic

pytestmark = pytest.mark.kafka


def test_a_verdict_from_the_command_line_lands_on_the_feedback_topic_keyed_by_incident(
    seismo_env: Env,
) -> None:
    result = seismo_env.seismo("feedback", "inc-0123456789abcdef", "--outcome", "resolved",
                               "--remediation", "undo the last rollout", "--root-cause", "payments")
    assert "recorded: inc-0123456789abcdef resolved" in result.stdout
    seismo_env.seismo("feedback", "inc-fedcba9876543210", "--outcome", "not-helpful")
    records = read_topic(seismo_env.topic("feedback"))
    decode = codec_for("feedback").decode
    verdicts = {k.decode(): Feedback.from_avro(decode(v)) for k, v in records if k and v}
    first = verdicts["inc-0123456789abcdef"]
    assert first.outcome is Outcome.RESOLVED_BY_REMEDIATION
    assert (first.remediation, first.root_cause_service) == ("undo the last rollout", "payments")
    assert verdicts["inc-fedcba9876543210"].outcome is Outcome.RESOLVED_OTHERWISE


def test_an_unknown_outcome_is_refused_with_the_choices(seismo_env: Env) -> None:
    result = seismo_env.seismo("feedback", "inc-1", "--outcome", "maybe", check=False)
    assert result.returncode == 2
    assert "resolved" in result.stderr and "not-helpful" in result.stderr
