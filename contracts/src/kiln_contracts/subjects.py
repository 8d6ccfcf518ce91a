"""NATS stream, subject and header names. Declared here once; services never spell them."""

from __future__ import annotations

from enum import StrEnum

from kiln_contracts.ids import parse_run_id

RUNS_STREAM = "RUNS"
RUNS_STREAM_SUBJECTS = ["runs.>"]
RUNS_REQUESTED = "runs.requested"

EXPORTS_STREAM = "EXPORTS"
EXPORTS_STREAM_SUBJECTS = ["exports.>"]

HEADER_MSG_ID = "Nats-Msg-Id"
HEADER_RUN_ID = "Run-Id"
HEADER_REQUEST_ID = "X-Request-ID"


class RunEventName(StrEnum):
    """The per-run event subjects: ``runs.{run_id}.{name}``."""

    TEXT_STAGE = "text_stage"
    STARTED = "started"
    GENERATED = "generated"
    STORED = "stored"
    FAILED = "failed"
    CANCEL = "cancel"
    CANCELLED = "cancelled"


def run_event_subject(run_id: str, event: RunEventName) -> str:
    return f"runs.{parse_run_id(run_id)}.{event.value}"


def run_event_filter(event: RunEventName) -> str:
    """Subject filter matching one event kind for every run (for durable consumers)."""
    return f"runs.*.{event.value}"


def run_events_wildcard(run_id: str) -> str:
    return f"runs.{parse_run_id(run_id)}.*"


def progress_subject(run_id: str) -> str:
    """Core NATS (not stored): progress is ephemeral by design."""
    return f"progress.runs.{parse_run_id(run_id)}"


def msg_id(run_id: str, event: str) -> str:
    """JetStream de-duplication id: one message per run and event, however often it is sent."""
    return f"{parse_run_id(run_id)}:{event}"


def parse_run_event_subject(subject: str) -> tuple[str, RunEventName]:
    """Split ``runs.{id}.{event}``; raises ValueError on anything else."""
    parts = subject.split(".")
    if len(parts) != 3 or parts[0] != "runs":
        raise ValueError(f"not a run event subject: {subject!r}")
    return parse_run_id(parts[1]), RunEventName(parts[2])


# -- exports (stream EXPORTS) -------------------------------------------------------------
EXPORTS_REQUESTED = "exports.requested"


class ExportEventName(StrEnum):
    """The per-export event subjects: ``exports.{export_id}.{name}``."""

    PROGRESS = "progress"
    COMPLETED = "completed"
    FAILED = "failed"


def export_event_subject(export_id: str, event: ExportEventName) -> str:
    # Export ids are UUIDv7 like run ids: the same strict check keeps subjects clean.
    return f"exports.{parse_run_id(export_id)}.{event.value}"


def export_events_wildcard(export_id: str) -> str:
    return f"exports.{parse_run_id(export_id)}.*"
