"""Every event type by name, and one validator for all of them (built once, used on the hot path)."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import GetCoreSchemaHandler, GetPydanticSchema, TypeAdapter
from pydantic_core import CoreSchema, core_schema

from schemas.events.base import Event
from schemas.events.finance import FINANCE_EVENTS
from schemas.events.plgn import PLGN_EVENTS
from schemas.events.training import TRAINING_EVENTS

ALL_EVENT_CLASSES: tuple[type[Event], ...] = (*TRAINING_EVENTS, *PLGN_EVENTS, *FINANCE_EVENTS)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.model_fields["event_type"].default: cls for cls in ALL_EVENT_CLASSES
}
"""Event class by `event_type` (e.g. "cvf.enrolment.created")."""


def _tagged_union(_source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
    # What `Field(discriminator="event_type")` builds, with the tags given rather than inferred: pydantic
    # cannot infer them through the split by input mode in the event models' schemas (see `Event`).
    return core_schema.tagged_union_schema(
        choices={event_type: handler.generate_schema(cls) for event_type, cls in EVENT_TYPES.items()},
        discriminator="event_type",
        strict=False,
        from_attributes=True,
    )


# A discriminated union: pydantic dispatches on `event_type` instead of trying every class in turn.
# The union is built from the class tuple at import time, which no static checker can follow.
_AnyEvent: Any = Annotated[Union[tuple(ALL_EVENT_CLASSES)], GetPydanticSchema(_tagged_union)]  # noqa: UP007

EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(_AnyEvent)
"""Validates any event document (dict or JSON bytes) into its event class."""


def event_class(event_type: str) -> type[Event]:
    """The class of `event_type`.

    Raises:
        KeyError: when the event type is unknown.
    """
    return EVENT_TYPES[event_type]


def event_names(event_type: str) -> dict[str, str]:
    """User-facing names ("es", "pt", "en") of `event_type`.

    Raises:
        KeyError: when the event type is unknown.
    """
    return dict(EVENT_TYPES[event_type].names)


SCHEMA_ID_PREFIX = "urn:alcance:schema:"
CE_TYPE_PREFIX = "org.aladi.alcance."


def schema_id(event_type: str, version: int) -> str:
    """The JSON Schema `$id` of one event type version, also sent as the `ce_dataschema` header."""
    return f"{SCHEMA_ID_PREFIX}{event_type}.v{version}"


def schema_version_of(cls: type[Event]) -> int:
    """The schema version an event class emits (its `schema_version` default)."""
    version = cls.model_fields["schema_version"].default
    if not isinstance(version, int):
        raise TypeError(f"{cls.__name__}.schema_version has no integer default")
    return version


def event_type_of(cls: type[Event]) -> str:
    """The `event_type` an event class emits (its `event_type` default)."""
    event_type = cls.model_fields["event_type"].default
    if not isinstance(event_type, str):
        raise TypeError(f"{cls.__name__}.event_type has no string default")
    return event_type


def ce_type(event_type: str, version: int) -> str:
    """The CloudEvents `type` of one event type version, e.g. `org.aladi.alcance.cvf.enrolment.created.v1`."""
    return f"{CE_TYPE_PREFIX}{event_type}.v{version}"
