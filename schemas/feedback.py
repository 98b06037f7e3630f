"""The Feedback record behind ``feedback.avsc``: an incident's outcome, as a person judged it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.models import utc


class Outcome(StrEnum):
    RESOLVED_BY_REMEDIATION = "resolved_by_remediation"
    RESOLVED_OTHERWISE = "resolved_otherwise"
    FALSE_POSITIVE = "false_positive"
    DUPLICATE = "duplicate"
    STILL_OPEN = "still_open"


class Feedback(BaseModel):
    """One verdict; the latest per incident id wins on the compacted topic."""

    model_config = ConfigDict(frozen=True)

    incident_id: str = Field(min_length=1, max_length=256)
    outcome: Outcome
    remediation: str | None = Field(default=None, max_length=2000)
    root_cause_service: str | None = Field(default=None, max_length=256)
    note: str = Field(default="", max_length=4000)
    recorded_by: str
    recorded_at: datetime

    @field_validator("recorded_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return utc(value)

    def to_avro(self) -> dict[str, Any]:
        data = self.model_dump(mode="python")
        data["outcome"] = self.outcome.value
        return data

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> Feedback:
        return cls.model_validate(record)
