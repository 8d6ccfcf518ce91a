"""Text stages end to end (issue 3 item 9): a stack whose pipeline has a chat endpoint (the
llm-sim) runs ``noise_translated``'s translation stage before generation and stores its result
as ``02_translation.txt``; a failing endpoint fails the run; the shared stack, which has no
endpoint, refuses such workflows up front."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from kiln_devstack.stack import Stack, StackConfig
from support.kiln_polling import wait_final

pytestmark = pytest.mark.integration

WORKFLOW = "noise_translated"
PARAMS = {"width": 16, "height": 16}


@pytest.fixture(scope="module")
def llm_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = StackConfig(var_dir=tmp_path_factory.mktemp("llm-stack"), llm=True)
    with Stack(config) as running:
        yield running


@pytest.fixture
def gw(llm_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=llm_stack.gateway_url, timeout=10) as client:
        yield client


@pytest.fixture
def llm(llm_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=llm_stack.urls["llm-sim"], timeout=10) as client:
        yield client
        client.post("/sim/faults", json={}).raise_for_status()


def create(gateway: httpx.Client, text: str) -> httpx.Response:
    return gateway.post(
        "/api/runs", json={"workflow": WORKFLOW, "input_text": text, "params": PARAMS}
    )


def test_the_translation_is_stored_as_its_own_entity_before_generation(
    gw: httpx.Client, llm: httpx.Client
) -> None:
    response = create(gw, "ein roter Drachen")
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]

    record = wait_final(gw, run_id)
    assert record["status"] == "completed", record["error"]
    names = [e["filename"] for e in record["entities"]]
    assert names[:3] == ["01_input.txt", "02_translation.txt", "03_workflow.json"]
    assert any(e["type"] == "output_image" for e in record["entities"][3:]), names
    translation = gw.get(f"/api/runs/{run_id}/files/02_translation.txt")
    assert translation.status_code == 200
    assert translation.text == "[default] translate: EIN ROTER DRACHEN"
    assert record["entities"][1]["meta"] == {"stage_index": 0, "model": "default"}
    asked = [
        r
        for r in llm.get("/sim/requests").json()
        if r["messages"][1]["content"] == "ein roter Drachen"
    ]
    assert len(asked) == 1


def test_a_failing_chat_endpoint_fails_the_run_with_the_stage_named(
    gw: httpx.Client, llm: httpx.Client
) -> None:
    llm.post("/sim/faults", json={"error_500": 1}).raise_for_status()
    response = create(gw, "ein blauer Drachen")
    assert response.status_code == 202, response.text

    record = wait_final(gw, response.json()["run_id"])
    assert record["status"] == "failed"
    error = record["error"]
    assert (error["stage"], error["code"]) == ("pipeline", "text_stage_failed")
    assert "'translation'" in error["message"]
    assert "500" in error["message"]
    assert [e["filename"] for e in record["entities"]] == ["01_input.txt"]


def test_without_a_chat_endpoint_the_workflow_is_listed_unavailable_and_refused(
    gateway: httpx.Client,
) -> None:
    listed = {w["name"]: w for w in gateway.get("/api/workflows").json()}
    assert "chat endpoint" in listed[WORKFLOW]["unavailable_reason"]
    assert listed[WORKFLOW]["text_stages"] == ["translation"]
    assert listed["noise"]["unavailable_reason"] is None
    before = gateway.get("/api/runs", params={"workflow": WORKFLOW}).json()["items"]

    response = create(gateway, "ein Drachen")

    assert response.status_code == 422
    assert response.json()["error"] == "workflow_unavailable"
    assert "chat endpoint" in response.json()["detail"]
    after = gateway.get("/api/runs", params={"workflow": WORKFLOW}).json()["items"]
    assert after == before == []
