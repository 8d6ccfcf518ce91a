"""The publish and consume helpers: standard headers on every event, handlers chosen and fed
by event type (no NATS needed: messages are stand-ins)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from kiln_common.logging import current_request_id
from kiln_common.nats import DurableConsumer, event_headers
from kiln_contracts.events import RunMessage, RunRequested, RunStarted, RunStored
from kiln_contracts.exports import ExportCompleted
from kiln_contracts.records import RunRequest
from kiln_contracts.subjects import HEADER_MSG_ID, HEADER_REQUEST_ID, HEADER_RUN_ID

RUN = "01900000-0000-7000-8000-000000000000"


async def _ignore(message: Any, exc: BaseException) -> None:
    raise AssertionError("not expected")


def test_run_events_carry_msg_id_run_id_and_request_id() -> None:
    token = current_request_id.set("req-1")
    try:
        headers = event_headers(RunStored(run_id=RUN, filenames=[]))
    finally:
        current_request_id.reset(token)
    assert headers == {
        HEADER_MSG_ID: f"{RUN}:stored",
        HEADER_RUN_ID: RUN,
        HEADER_REQUEST_ID: "req-1",
    }


def test_export_events_keep_the_request_id_too() -> None:
    token = current_request_id.set("req-2")
    try:
        headers = event_headers(
            ExportCompleted(export_id=RUN, runs_total=1, bytes=1, sha256="0" * 64)
        )
    finally:
        current_request_id.reset(token)
    assert headers == {HEADER_MSG_ID: f"{RUN}:completed", HEADER_REQUEST_ID: "req-2"}
    assert HEADER_REQUEST_ID not in event_headers(RunStored(run_id=RUN, filenames=[]))


def test_the_consumer_filters_on_its_handlers_and_decodes_for_each() -> None:
    seen: list[RunMessage] = []

    async def on_requested(event: RunRequested) -> None:
        seen.append(event)

    async def on_started(event: RunStarted) -> None:
        seen.append(event)

    consumer = DurableConsumer(
        js=None,  # type: ignore[arg-type]
        stream="RUNS",
        durable="test",
        handlers={RunRequested: on_requested, RunStarted: on_started},
        on_give_up=_ignore,
    )
    assert consumer.filter_subjects == ["runs.requested", "runs.*.started"]
    requested = RunRequested(run_id=RUN, request=RunRequest(workflow="noise", input_text="x"))
    started = RunStarted(run_id=RUN, backend="b", backend_url="http://b", graph={})
    for event in (started, requested):
        message = SimpleNamespace(subject=event.subject, data=event.model_dump_json().encode())
        asyncio.run(consumer._dispatch(message))  # type: ignore[arg-type]
    assert seen == [started, requested]
    assert [type(e) for e in seen] == [RunStarted, RunRequested]


def test_a_consumer_needs_a_handler() -> None:
    with pytest.raises(ValueError, match="one handler per event type"):
        DurableConsumer(
            js=None,  # type: ignore[arg-type]
            stream="RUNS",
            durable="test",
            handlers={},
            on_give_up=_ignore,
        )


def test_connect_uses_the_configured_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import kiln_common.nats as kiln_nats
    from kiln_common.settings import KilnSettings

    seen: dict[str, Any] = {}

    async def fake_connect(url: str, **options: Any) -> str:
        seen.update(options, url=url)
        return "client"

    monkeypatch.setattr(kiln_nats.nats, "connect", fake_connect)
    settings = KilnSettings(nats_url="nats://example:4222", nats_connect_timeout_seconds=1.5)
    assert asyncio.run(kiln_nats.connect(settings, "test")) == "client"
    assert (seen["url"], seen["connect_timeout"], seen["name"]) == (
        "nats://example:4222",
        1.5,
        "test",
    )
