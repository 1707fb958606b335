"""Options of a Moodle source (`options` of its `[[sources]]` entry)."""

from __future__ import annotations

from pydantic import Field

from connectors.base import ConnectorOptions


class MoodleOptions(ConnectorOptions):
    """Options of a Moodle source (`options` of its `[[sources]]` entry)."""

    page_overlap: int = Field(default=20, ge=0, le=1_000)
    completion_concurrency: int = Field(default=4, ge=1, le=32)
    certificates: bool = True
    learner_identity: str = Field(default="email", pattern="^(email|id)$")
    audience_field: str = "audience"
    gender_field: str = "gender"
    # Role shortnames whose holders are learners; teachers, managers and other roles are not counted.
    learner_roles: list[str] = Field(default_factory=lambda: ["student"], min_length=1)
