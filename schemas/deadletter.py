"""The dead-letter contract: the headers a dead letter carries, named and built here only.

A dead letter keeps the rejected record's value (or a bounded summary of it) and the record's own
headers; these headers say why it was rejected and where it came from. Connectors dead-letter source
records, processors dead-letter consumer records; both vocabularies are described in the AsyncAPI
document from `HEADERS`.
"""

from __future__ import annotations

REASON = "dlq_reason"
# Dead letters of a connector: a source record.
SOURCE = "dlq_source"
RAW_RECORD = "dlq_raw_record"
# Dead letters of a processor: a record of an input topic.
SOURCE_TOPIC = "dlq_source_topic"
SOURCE_PARTITION = "dlq_source_partition"
SOURCE_OFFSET = "dlq_source_offset"
# Added when the record had to be bounded (see `infra.dead_letters`).
VALUE = "dlq_value"
HEADERS_DROPPED = "dlq_headers_dropped"

# Header name -> what it says (the AsyncAPI document's descriptions).
HEADERS: dict[str, str] = {
    REASON: "short reason (UTF-8)",
    SOURCE_TOPIC: "processors: topic of the rejected record",
    SOURCE_PARTITION: "processors: its partition",
    SOURCE_OFFSET: "processors: its offset",
    SOURCE: "connectors: source instance name",
    RAW_RECORD: "connectors: marks a raw source record value",
    VALUE: "`record` (the value is the rejected record) or `summary` (its size and SHA-256, as JSON)",
    HEADERS_DROPPED: "the record's own headers were left out: their total size in bytes",
}

Headers = list[tuple[str, bytes]]


def for_source_record(reason: str, source: str, *, redacted: bool) -> Headers:
    """Headers of a connector's dead letter: reason, source, and whether the value is the raw record."""
    return [
        (REASON, reason.encode()),
        (SOURCE, source.encode()),
        (RAW_RECORD, b"false" if redacted else b"true"),
    ]


def for_consumer_record(reason: str, topic: str, partition: int, offset: int) -> Headers:
    """Headers of a processor's dead letter: reason, and the topic, partition and offset of the record."""
    return [
        (REASON, reason.encode()),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
    ]
