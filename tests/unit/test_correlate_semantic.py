"""Semantic template evidence: SimHash signatures of template embeddings and the link they give."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from schemas.codec import codec_for
from schemas.models import Event
from stream_processors.correlate.adapter import CorrelateAdapter
from stream_processors.correlate.correlator import CorrelatorConfig
from stream_processors.correlate.incident_state import IncidentState
from stream_processors.correlate.links import LinkKind, link
from stream_processors.correlate.probe import FixedProbe
from stream_processors.correlate.semantic import (
    SIMILAR_MIN,
    TemplateSigner,
    hyperplanes,
    signature,
    similarity,
)
from stream_processors.correlate.signals import Signal, SignalKind
from stream_processors.correlate.topology import Topology
from stream_processors.embed.cache import CachedEmbedder
from stream_processors.embed.hashing import HashEmbedder
from stream_processors.runtime.step import Output, Record
from tests.unit.test_correlate_adapter import TOPICS

S = 1_000_000


def at_angle(v: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector whose cosine with unit ``v`` is ``cosine``."""
    o = rng.standard_normal(v.shape[0])
    o -= (o @ v) * v
    o /= np.linalg.norm(o)
    return cosine * v + math.sqrt(1 - cosine**2) * o


def test_the_signature_estimates_the_cosine_between_embeddings() -> None:
    rng = np.random.default_rng(1)
    for cosine in (0.95, 0.7, 0.2):
        errors = []
        for _ in range(50):
            v = rng.standard_normal(384)
            v /= np.linalg.norm(v)
            errors.append(similarity(signature(v), signature(at_angle(v, cosine, rng))) - cosine)
        assert abs(float(np.mean(errors))) < 0.05, cosine
    v = rng.standard_normal(384)
    assert similarity(signature(v), signature(v)) == 1.0
    assert similarity(signature(v), signature(-v)) == -1.0
    assert similarity(signature(v), "") == 0.0


def test_the_hyperplanes_are_the_same_in_every_process() -> None:
    # a signature is part of the saved state and of the signals topic: it may not depend on the process
    again = np.random.default_rng(20_261_206).standard_normal((64, 128)).astype(np.float32)
    assert np.array_equal(hyperplanes(64), again)


def incident_with(service: str, template: str, shape: str) -> IncidentState:
    inc = IncidentState("inc-1", 0, 0, 0)
    inc.add(Signal("s1", SignalKind.SYMPTOM, 0, service, template_id=template,
                   extra={"template": template, "shape": shape}), 50)
    return inc


def test_a_template_that_means_the_same_links_and_one_that_does_not_gives_no_reason() -> None:
    rng = np.random.default_rng(2)
    v = rng.standard_normal(384)
    v /= np.linalg.norm(v)
    inc = incident_with("payments", "t-timeout", signature(v))
    topo = Topology()
    topo.calls["checkout>payments"] = 1  # checkout calls payments: a reason to look
    close = Signal("s2", SignalKind.SYMPTOM, 5 * S, "checkout", template_id="t-other",
                   extra={"shape": signature(at_angle(v, 0.99, rng))})
    far = Signal("s3", SignalKind.SYMPTOM, 5 * S, "checkout", template_id="t-other",
                 extra={"shape": signature(at_angle(v, 0.3, rng))})
    lk = link(close, inc, topo, (), False, 300 * S)
    assert lk is not None and lk.kinds == (LinkKind.CALL, LinkKind.SIMILAR)
    assert lk.confidence == pytest.approx(1 - 0.3 * 0.65)
    far_link = link(far, inc, topo, (), False, 300 * S)
    assert far_link is not None and far_link.kinds == (LinkKind.CALL,)
    # alone it is below the join confidence: not even looked for without another reason
    lone = Signal("s4", SignalKind.SYMPTOM, 5 * S, "search", template_id="t-other", extra=close.extra)
    assert link(lone, inc, topo, (), False, 300 * S) is None
    assert 0.5 < SIMILAR_MIN < 1.0


def test_the_signer_embeds_each_template_once_and_gives_nothing_while_the_engine_fails() -> None:
    inner = HashEmbedder()
    signer = TemplateSigner(lambda: CachedEmbedder(inner, None))
    a = signer.sign("t1", "upstream timeout calling payments")
    assert len(a) == 32 and signer.sign("t1", "upstream timeout calling payments") == a
    assert signer.sign("t2", "upstream timeout calling payment service") != ""
    assert inner.calls == 2

    class Broken:
        model_version, dim = "broken", 8

        def embed(self, texts: list[str]) -> Any:
            raise RuntimeError("engine down")

    broken = TemplateSigner(lambda: CachedEmbedder(Broken(), None))  # type: ignore[arg-type]
    assert broken.sign("t1", "anything") == ""


@pytest.mark.parametrize("with_signer", [True, False])
def test_the_step_signs_the_templates_of_symptoms_only_when_a_signer_is_configured(with_signer: bool) -> None:
    signer = TemplateSigner(lambda: CachedEmbedder(HashEmbedder(), None)) if with_signer else None
    step = CorrelateAdapter(TOPICS, CorrelatorConfig(), FixedProbe(1), signer=signer)
    step.attach(lambda key: None)
    encode = codec_for("event").encode
    out = Output()
    for i, (severity, template) in enumerate((("error", "db pool exhausted <*>"), ("info", "ok <*>"))):
        e = Event(id=f"e{i}", source="kubernetes", kind="log", timestamp=datetime(2026, 1, 1, tzinfo=UTC),
                  service="payments", severity=severity, message=template, template=template,
                  template_id=f"t{i}")
        step.handle(Record(TOPICS.enriched, 0, i, b"payments", encode(e.to_avro()), 0), out)
    signals = [json.loads(v)["s"] for t, _, v in out.records if t == TOPICS.signals]
    assert [s["id"] for s in signals] == ["e0"]  # the info line gives no signal
    assert ("shape" in signals[0].get("x", {})) is with_signer
