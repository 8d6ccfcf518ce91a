"""Live run events for browsers (Server-Sent Events).

The stream starts with the current state (the record from media-service), then passes on
progress (core NATS ``progress.runs.{id}``, ephemeral) and state changes (JetStream
``runs.{id}.*``) and ends after a final state. Nothing lives in the replica: any gateway serves
any run, and a reconnecting browser's ``Last-Event-ID`` (a RUNS stream sequence number) resumes
from JetStream exactly where it left off.

Subscriptions are opened *before* the record is read, so an event that happens in between is
delivered too; events the record already reflects are dropped because they would not move the
state forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

from kiln_common.sse import HEARTBEAT, sse_event, sse_retry
from kiln_contracts.events import (
    RunCancelling,
    RunFailed,
    RunMessage,
    RunProgress,
    RunResubmitted,
    event_type_for,
    run_event_types,
)
from kiln_contracts.records import RunError, RunRecord, RunStatus, can_transition
from kiln_contracts.subjects import RUNS_STREAM, progress_subject, run_events_wildcard
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from pydantic import BaseModel, JsonValue, ValidationError

logger = logging.getLogger("kiln.gateway.events")

# The events that move a run to another state: what the stream passes on as ``state``.
STATE_EVENTS = tuple(t for t in run_event_types() if t.moves_to is not None)
# Events that change no state but that the browser shows (as ``state`` with the status
# unchanged): a run being stopped until the backend confirms it, a resubmission.
NOTICE_EVENTS: tuple[type[RunMessage], ...] = (RunCancelling, RunResubmitted)
RECONNECT_MILLIS = 2000


class RunStateEvent(BaseModel):
    """``event: state``. The first one carries the whole record; later ones what changed."""

    run_id: str
    status: RunStatus
    event: str
    at: datetime
    error: RunError | None = None
    detail: dict[str, JsonValue] | None = None
    record: RunRecord | None = None


class RunEventStream:
    """One browser's subscription to one run. ``open`` before answering, so a missing run is
    still a JSON 404 and not a broken stream."""

    def __init__(
        self,
        nc: NatsClient,
        js: JetStreamContext,
        run_id: str,
        heartbeat_seconds: float,
    ) -> None:
        self.nc = nc
        self.js = js
        self.run_id = run_id
        self.heartbeat_seconds = heartbeat_seconds
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._subscriptions: list[Subscription] = []
        self.cursor = 0
        self.record: RunRecord | None = None

    async def _enqueue(self, msg: Msg) -> None:
        self._queue.put_nowait(msg)

    async def open(
        self, resume_after: int | None, read_record: Callable[[], Awaitable[RunRecord]]
    ) -> RunRecord:
        if resume_after is None:
            info = await self.js.stream_info(RUNS_STREAM)
            self.cursor = int(info.state.last_seq)
        else:
            self.cursor = resume_after
        try:
            self._subscriptions.append(
                await self.nc.subscribe(progress_subject(self.run_id), cb=self._enqueue)
            )
            self._subscriptions.append(
                await self.js.subscribe(
                    run_events_wildcard(self.run_id),
                    stream=RUNS_STREAM,
                    cb=self._enqueue,
                    ordered_consumer=True,
                    config=self._start(resume_after),
                )
            )
            self.record = await read_record()
        except BaseException:
            await self.close()
            raise
        return self.record

    @staticmethod
    def _start(resume_after: int | None) -> ConsumerConfig:
        """Resuming: after the last event the browser saw (it has the rest). Opening: all of
        this run's events, not just those after the stream's end: one already in the stream
        may not be in the record yet when the record is read, and would otherwise be missed
        for good (the stream would never end). A run has few events; the state check drops
        those the record already reflects."""
        if resume_after is not None:
            return ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=resume_after + 1
            )
        return ConsumerConfig(deliver_policy=DeliverPolicy.ALL)

    async def close(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._subscriptions.clear()

    async def stream(self) -> AsyncIterator[bytes]:
        assert self.record is not None, "open() first"
        status = self.record.status
        try:
            yield sse_retry(RECONNECT_MILLIS)
            first = RunStateEvent(
                run_id=self.run_id,
                status=status,
                event="snapshot",
                at=self.record.updated_at,
                error=self.record.error,
                record=self.record,
            )
            yield sse_event("state", first.model_dump_json(), self.cursor)
            while not status.is_final:
                try:
                    msg = await asyncio.wait_for(self._queue.get(), self.heartbeat_seconds)
                except TimeoutError:
                    yield HEARTBEAT
                    continue
                if msg.subject == progress_subject(self.run_id):
                    progress = self._progress(msg)
                    if progress is not None:
                        yield sse_event("progress", progress.model_dump_json())
                    continue
                change = self._state_change(msg, status)
                if change is None:
                    continue
                status = change.status
                yield sse_event("state", change.model_dump_json(), msg.metadata.sequence.stream)
        finally:
            await self.close()

    def _progress(self, msg: Msg) -> RunProgress | None:
        try:
            return RunProgress.model_validate_json(msg.data)
        except ValidationError as exc:
            logger.warning("dropping malformed progress message: %s", exc)
            return None

    def _state_change(self, msg: Msg, current: RunStatus) -> RunStateEvent | None:
        notice = event_type_for(msg.subject, NOTICE_EVENTS)
        if notice is not None:
            return self._notice(msg, notice, current)
        event_type = event_type_for(msg.subject, STATE_EVENTS)
        new = event_type.moves_to if event_type is not None else None
        if event_type is None or new is None or not can_transition(current, new):
            return None  # a request (cancel) or something the state already reflects
        try:
            event = event_type.model_validate_json(msg.data)
        except ValidationError as exc:
            logger.warning("dropping malformed %s event: %s", event_type.event_name, exc)
            return None
        error = event.error if isinstance(event, RunFailed) else None
        return RunStateEvent(
            run_id=self.run_id,
            status=new,
            event=event_type.event_name.value,
            at=event.at,
            error=error,
        )

    def _notice(
        self, msg: Msg, event_type: type[RunMessage], current: RunStatus
    ) -> RunStateEvent | None:
        try:
            event = event_type.model_validate_json(msg.data)
        except ValidationError as exc:
            logger.warning("dropping malformed %s event: %s", event_type.event_name, exc)
            return None
        detail = event.model_dump(mode="json", exclude={"run_id", "at"})
        return RunStateEvent(
            run_id=self.run_id,
            status=current,
            event=event_type.event_name.value,
            at=event.at,
            detail=detail,
        )
