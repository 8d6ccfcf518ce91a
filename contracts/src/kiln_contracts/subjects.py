"""NATS stream, subject and header names. Declared here once; services never spell them."""

from __future__ import annotations

from enum import StrEnum

from kiln_contracts.ids import parse_run_id

RUNS_STREAM = "RUNS"
RUNS_STREAM_SUBJECTS = ["runs.>"]
RUNS_REQUESTED = "runs.requested"

EXPORTS_STREAM = "EXPORTS"
EXPORTS_STREAM_SUBJECTS = ["exports.>"]

# NATS KV: who took a run waiting in RUNS, the pipeline (to drive it) or a cancel (to end it);
# created once per run with KV ``create``, so of two racing parties exactly one wins.
RUN_CLAIMS_BUCKET = "kiln_run_claims"
CLAIM_DRIVING = b"driving"
CLAIM_CANCELLED = b"cancelled"

HEADER_MSG_ID = "Nats-Msg-Id"
HEADER_RUN_ID = "Run-Id"
HEADER_REQUEST_ID = "X-Request-ID"


class RunEventName(StrEnum):
    """Every run event's name. Most are per-run subjects ``runs.{run_id}.{name}``; ``requested``
    is the one queue subject ``runs.requested`` and ``progress`` lives on core NATS."""

    REQUESTED = "requested"
    TEXT_STAGE = "text_stage"
    STARTED = "started"
    GENERATED = "generated"
    STORED = "stored"
    FAILED = "failed"
    RESUBMITTED = "resubmitted"
    CANCEL = "cancel"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    PROGRESS = "progress"


def run_event_subject(run_id: str, event: RunEventName) -> str:
    run_id = parse_run_id(run_id)
    if event is RunEventName.REQUESTED:
        return RUNS_REQUESTED
    if event is RunEventName.PROGRESS:
        return progress_subject(run_id)
    return f"runs.{run_id}.{event.value}"


def run_event_filter(event: RunEventName) -> str:
    """Subject filter matching one event kind for every run (for consumers)."""
    if event is RunEventName.REQUESTED:
        return RUNS_REQUESTED
    if event is RunEventName.PROGRESS:
        return "progress.runs.*"
    return f"runs.*.{event.value}"


# Every per-run event of every run (not runs.requested, not progress).
EVERY_RUN_EVENT = "runs.*.*"


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
    name = RunEventName(parts[2])
    if run_event_subject(parts[1], name) != subject:  # requested and progress live elsewhere
        raise ValueError(f"not a run event subject: {subject!r}")
    return parse_run_id(parts[1]), name


def subject_matches(subject_filter: str, subject: str) -> bool:
    """NATS wildcard matching: ``*`` is one token, a final ``>`` one or more."""
    wanted, parts = subject_filter.split("."), subject.split(".")
    for index, part in enumerate(wanted):
        if part == ">":
            return index == len(wanted) - 1 and len(parts) > index
        if index >= len(parts) or part not in ("*", parts[index]):
            return False
    return len(parts) == len(wanted)


# -- exports (stream EXPORTS) -------------------------------------------------------------
EXPORTS_REQUESTED = "exports.requested"


class ExportEventName(StrEnum):
    """Every export event's name: per-export subjects ``exports.{export_id}.{name}``, except
    ``requested``, the one queue subject ``exports.requested``."""

    REQUESTED = "requested"
    PROGRESS = "progress"
    COMPLETED = "completed"
    FAILED = "failed"


def export_event_subject(export_id: str, event: ExportEventName) -> str:
    # Export ids are UUIDv7 like run ids: the same strict check keeps subjects clean.
    export_id = parse_run_id(export_id)
    if event is ExportEventName.REQUESTED:
        return EXPORTS_REQUESTED
    return f"exports.{export_id}.{event.value}"


def export_event_filter(event: ExportEventName) -> str:
    """Subject filter matching one event kind for every export."""
    if event is ExportEventName.REQUESTED:
        return EXPORTS_REQUESTED
    return f"exports.*.{event.value}"


def export_events_wildcard(export_id: str) -> str:
    return f"exports.{parse_run_id(export_id)}.*"
