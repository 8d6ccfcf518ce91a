"""Text stages in the driver: run in order before generation, each result published, the last
one in the prompt; a failing or missing chat endpoint fails the run before any backend is asked.
The chat endpoint is the llm-sim app, in process, behind the real ChatClient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import RunRequested
from kiln_contracts.records import RunRequest, SafetyLevel, Stage
from kiln_contracts.workflows import TextStage
from kiln_pipeline.comfy import ComfyClient
from kiln_pipeline.driver import PollPolicy, RunDriver
from kiln_pipeline.llm import ChatClient
from kiln_pipeline.pool import Backend, BackendPool
from kiln_pipeline.ports import TextStageError
from kiln_pipeline.templates import WorkflowTemplate, load_templates
from kiln_pipeline.watcher import BackendWatcher
from kiln_safety.screen import Screen, build_screen
from kiln_safety.verdicts import CheckResult
from llm_sim.app import create_app as create_llm_sim
from pipeline_fakes import FakeComfy, FakeLedger, RecordingSink
from pydantic import ValidationError

pytestmark = pytest.mark.anyio

RUN = "01900000-0000-7000-8000-0000000000a1"
FAST = PollPolicy(
    initial_seconds=0.01, max_seconds=0.02, lost_grace_seconds=0.05, backend_down_seconds=0.1
)
STAGES = [
    TextStage(name="translation", system_prompt="Translate into English.", model="tr"),
    TextStage(name="restyle", system_prompt="Restyle as a poem.", model="po"),
]


@dataclass
class Rig:
    comfy: FakeComfy
    sink: RecordingSink
    llm_http: httpx.AsyncClient
    backend: Backend

    def driver(self, llm: ChatClient | None) -> RunDriver:
        sd = load_templates()["sd15_text_to_image"]
        staged = sd.manifest.model_copy(update={"name": "staged", "text_stages": STAGES})
        templates = {"staged": WorkflowTemplate(staged, sd.graph)}
        return RunDriver(
            templates,
            BackendPool([self.backend]),
            self.sink,
            FakeLedger(),
            FAST,
            llm,
            screen=build_screen(None),
        )

    async def faults(self, **faults: object) -> None:
        response = await self.llm_http.post("/sim/faults", json=faults)
        response.raise_for_status()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    comfy = FakeComfy()
    llm_transport = httpx.ASGITransport(app=create_llm_sim())
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(comfy.handle)) as http,
        httpx.AsyncClient(transport=llm_transport, base_url="http://llm") as llm_http,
    ):
        client = ComfyClient("comfyui-0", "http://comfy", http)
        backend = Backend(client, BackendWatcher("comfyui-0", "ws://unused"), "kiln-test", 2)
        yield Rig(comfy, RecordingSink(), llm_http, backend)


def request(text: str = "ein roter Vogel", level: SafetyLevel | None = None) -> RunRequested:
    request = RunRequest(workflow="staged", input_text=text, params={"seed": 1}, safety_level=level)
    return RunRequested(run_id=RUN, request=request)


async def test_stages_run_in_order_and_the_last_output_is_the_prompt(rig: Rig) -> None:
    driver = rig.driver(ChatClient("http://llm", rig.llm_http))
    await driver.drive(request(), redelivered=False)

    first = "[tr] translate: EIN ROTER VOGEL"
    second = f"[po] restyle: {first.upper()}"
    published = [
        (e.output.index, e.output.stage, e.output.text) for e in rig.sink.text_stage_events
    ]
    assert published == [(0, "translation", first), (1, "restyle", second)]
    [started] = rig.sink.started_events
    assert started.graph["6"]["inputs"]["text"] == second  # type: ignore[index,call-overload]
    assert [o.text for o in started.text_stages] == [first, second]
    assert rig.comfy.submitted == [RUN]
    assert len(rig.sink.generated_events) == 1
    assert not rig.sink.failed_events


async def test_a_chat_endpoint_error_fails_the_run_before_any_backend_is_asked(rig: Rig) -> None:
    await rig.faults(error_500=1)  # the first stage fails, so the second is never asked
    driver = rig.driver(ChatClient("http://llm", rig.llm_http))
    await driver.drive(request(), redelivered=False)

    [failed] = rig.sink.failed_events
    assert (failed.stage, failed.code) == (Stage.PIPELINE, ErrorCode.TEXT_STAGE_FAILED)
    assert "'translation'" in failed.message
    assert "500" in failed.message
    assert failed.details == {"text_stage": "translation", "index": 0}
    assert rig.sink.text_stage_events == []
    assert rig.comfy.submitted == []
    assert rig.sink.started_events == []


async def test_a_chat_endpoint_timeout_is_a_failed_text_stage() -> None:
    # The in-process transport ignores timeouts, so the timeout itself is raised by a fake.
    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(time_out)) as http:
        with pytest.raises(TextStageError, match="unreachable: ReadTimeout"):
            await ChatClient("http://llm", http).complete("m", "Translate.", "x")


async def test_without_a_chat_endpoint_a_staged_workflow_fails_as_unavailable(rig: Rig) -> None:
    await rig.driver(None).drive(request(), redelivered=False)

    [failed] = rig.sink.failed_events
    assert failed.code == ErrorCode.WORKFLOW_UNAVAILABLE
    assert "KILN_LLM_URL" in failed.message
    assert rig.comfy.submitted == []


def test_a_stage_may_not_take_an_entity_type_kiln_uses() -> None:
    for name in ("input", "workflow", "output_image"):
        with pytest.raises(ValidationError, match="entity type kiln uses"):
            TextStage(name=name, system_prompt="x")


def test_the_builtin_translated_noise_workflow_declares_one_translation_stage() -> None:
    template = load_templates()["noise_translated"]
    assert [s.name for s in template.manifest.text_stages] == ["translation"]
    assert template.graph == load_templates()["noise"].graph


async def test_a_text_stage_output_with_a_listed_term_fails_the_run_before_generation(
    rig: Rig,
) -> None:
    # The simulator echoes its input, so the first stage's output carries the term on.
    driver = rig.driver(ChatClient("http://llm", rig.llm_http))
    await driver.drive(request("a knight with a gun", SafetyLevel.KIDS), redelivered=False)

    [failed] = rig.sink.failed_events
    assert (failed.stage, failed.code) == (Stage.SAFETY, ErrorCode.TEXT_STAGE_BLOCKED)
    assert failed.details["text_stage"] == "translation"
    assert failed.details["categories"] == ["violence"]
    assert "gun" not in failed.message.lower()
    assert rig.sink.text_stage_events == []  # the refused text is not published
    assert rig.comfy.submitted == []


async def test_the_same_output_passes_at_a_level_that_allows_it(rig: Rig) -> None:
    driver = rig.driver(ChatClient("http://llm", rig.llm_http))
    await driver.drive(request("a knight with a gun", SafetyLevel.ADULT), redelivered=False)
    assert not rig.sink.failed_events
    assert rig.comfy.submitted == [RUN]


async def test_a_run_without_a_level_is_checked_as_kids(rig: Rig) -> None:
    driver = rig.driver(ChatClient("http://llm", rig.llm_http))
    await driver.drive(request("a knight with a gun"), redelivered=False)
    assert rig.sink.failed_events[0].code == ErrorCode.TEXT_STAGE_BLOCKED


class NoAnswer:
    name = "terms"

    async def check_text(self, text: str) -> CheckResult:
        raise TimeoutError


async def test_a_text_stage_check_without_an_answer_fails_the_run_never_passes(
    rig: Rig,
) -> None:
    driver = rig.driver(ChatClient("http://llm", rig.llm_http))
    shipped = build_screen(None)
    driver.screen = Screen(shipped.policy, {key: [NoAnswer()] for key in shipped.checks})
    await driver.drive(request(), redelivered=False)

    [failed] = rig.sink.failed_events
    assert (failed.stage, failed.code) == (Stage.SAFETY, ErrorCode.SAFETY_UNAVAILABLE)
    assert rig.comfy.submitted == []
