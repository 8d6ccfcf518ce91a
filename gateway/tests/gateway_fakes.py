"""Fakes behind the gateway's ports for unit tests: media-service's run records, the run queue,
the workflow catalogue, a NATS KV bucket and JetStream's consumer info."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kiln_common.proxy import UpstreamError
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import RunCancel, RunRequested
from kiln_contracts.records import RunError, RunHistoryEntry, RunRecord, RunRequest, RunStatus
from kiln_contracts.workflows import MediaKind, ParamSpec, WorkflowManifest
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

NOISE = WorkflowManifest(
    name="noise",
    title={"en": "Noise picture", "de": "Rauschbild"},
    kind=MediaKind.IMAGE,
    params={"width": ParamSpec(type="int", default=256, minimum=16, maximum=1024)},
)


@dataclass
class FakeWorkflows:
    manifests: dict[str, WorkflowManifest] = field(default_factory=lambda: {"noise": NOISE})

    async def get(self, name: str) -> WorkflowManifest | None:
        return self.manifests.get(name)


@dataclass
class FakeRunRecords:
    """media-service: create is idempotent for the same id, as the real one is."""

    records: dict[str, RunRecord] = field(default_factory=dict)
    creates: list[str] = field(default_factory=list)
    failures: list[tuple[str, RunError]] = field(default_factory=list)
    create_error: UpstreamError | None = None
    fail_error: UpstreamError | None = None

    async def create(self, run_id: str, request: RunRequest) -> RunRecord:
        self.creates.append(run_id)
        if self.create_error is not None:
            raise self.create_error
        if run_id not in self.records:
            now = datetime.now(UTC)
            self.records[run_id] = RunRecord(
                run_id=run_id,
                status=RunStatus.QUEUED,
                created_at=now,
                updated_at=now,
                request=request,
                events=[RunHistoryEntry(at=now, event="created", status=RunStatus.QUEUED)],
            )
        return self.records[run_id]

    async def get(self, run_id: str) -> RunRecord:
        try:
            return self.records[run_id]
        except KeyError:
            raise UpstreamError(ErrorCode.RUN_NOT_FOUND, f"no run {run_id}", 404) from None

    async def fail(self, run_id: str, failure: RunError) -> None:
        if self.fail_error is not None:
            raise self.fail_error
        self.failures.append((run_id, failure))

    def move_on(self, run_id: str, status: RunStatus) -> None:
        """The run went on (picked up by the pipeline, say) after it was created."""
        record = self.records[run_id]
        entry = RunHistoryEntry(at=datetime.now(UTC), event=status.value, status=status)
        self.records[run_id] = record.model_copy(
            update={"status": status, "events": [*record.events, entry]}
        )


@dataclass
class FakeRunQueue:
    requested: list[RunRequested] = field(default_factory=list)
    cancels: list[RunCancel] = field(default_factory=list)
    error: Exception | None = None
    # Runs a pipeline has taken (a cancel must ask it); others are cancelled at once.
    taken_by_pipeline: set[str] = field(default_factory=set)
    cancelled_waiting: list[str] = field(default_factory=list)

    async def enqueue(self, requested: RunRequested) -> None:
        if self.error is not None:
            raise self.error
        self.requested.append(requested)

    async def cancel_waiting(self, run_id: str) -> bool:
        if self.error is not None:
            raise self.error
        if run_id in self.taken_by_pipeline:
            return False
        self.cancelled_waiting.append(run_id)
        return True

    async def request_cancel(self, cancel: RunCancel) -> None:
        if self.error is not None:
            raise self.error
        self.cancels.append(cancel)


@dataclass
class Allow:
    """An admission limit that lets everything through and counts the checks."""

    checks: list[tuple[Any, ...]] = field(default_factory=list)

    async def check(self, *args: Any) -> None:
        self.checks.append(args)


@dataclass
class KvEntry:
    key: str
    value: bytes | None
    revision: int


@dataclass
class FakeKeyValue:
    """A NATS KV bucket in memory, with the same compare-and-set errors."""

    entries: dict[str, KvEntry] = field(default_factory=dict)
    revision: int = 0
    error: Exception | None = None  # raised by every call: NATS is down

    def _put(self, key: str, value: bytes) -> int:
        self.revision += 1
        self.entries[key] = KvEntry(key, value, self.revision)
        return self.revision

    async def get(self, key: str) -> KvEntry:
        if self.error is not None:
            raise self.error
        try:
            return self.entries[key]
        except KeyError:
            raise KeyNotFoundError from None

    async def create(self, key: str, value: bytes) -> int:
        if self.error is not None:
            raise self.error
        if key in self.entries:
            raise KeyWrongLastSequenceError("wrong last sequence: key exists")
        return self._put(key, value)

    async def update(self, key: str, value: bytes, last: int | None = None) -> int:
        if self.error is not None:
            raise self.error
        current = self.entries.get(key)
        if current is None or current.revision != last:
            raise KeyWrongLastSequenceError("wrong last sequence")
        return self._put(key, value)

    async def put(self, key: str, value: bytes) -> int:
        if self.error is not None:
            raise self.error
        return self._put(key, value)


@dataclass
class ConsumerInfo:
    num_pending: int
    num_ack_pending: int


@dataclass
class FakeJetStream:
    """Only what QueueDepthGuard reads: the pipeline consumer's pending counts."""

    pending: int = 0
    ack_pending: int = 0
    error: Exception | None = None
    reads: int = 0

    async def consumer_info(self, stream: str, consumer: str) -> ConsumerInfo:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return ConsumerInfo(self.pending, self.ack_pending)
