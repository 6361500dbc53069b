"""CloudWatch Logs limits the sink must respect (see the PutLogEvents API reference and quotas)."""

from __future__ import annotations

#: Most events in one PutLogEvents call.
MAX_BATCH_EVENTS = 10_000
#: Most bytes in one PutLogEvents call: UTF-8 message bytes plus EVENT_OVERHEAD_BYTES per event.
MAX_BATCH_BYTES = 1_048_576
#: Bytes CloudWatch adds to each event when it measures a batch.
EVENT_OVERHEAD_BYTES = 26
#: Largest message that still fits a batch on its own (1 MiB minus the per-event overhead).
MAX_EVENT_BYTES = MAX_BATCH_BYTES - EVENT_OVERHEAD_BYTES
#: Newest minus oldest timestamp inside one batch, in milliseconds.
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000
#: Events older than this (ms) are rejected by CloudWatch.
MAX_EVENT_AGE_MS = 14 * 24 * 3600 * 1000
#: Events further than this (ms) in the future are rejected by CloudWatch.
MAX_EVENT_FUTURE_MS = 2 * 3600 * 1000

MAX_NAME_LENGTH = 512

RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
LOG_GROUP_CLASSES = ("STANDARD", "INFREQUENT_ACCESS")
