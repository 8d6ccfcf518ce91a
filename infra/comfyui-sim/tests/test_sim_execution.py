"""Running prompts: websocket messages, history, queue, cache, interrupt."""

from __future__ import annotations

from typing import Any

from sim_helpers import (
    Message,
    SimServer,
    drain,
    image_workflow,
    is_done,
    new_id,
    poll,
    receive,
    receive_until,
)

EXECUTION_TYPES = {
    "execution_start",
    "execution_cached",
    "executing",
    "executed",
    "execution_success",
    "execution_error",
    "execution_interrupted",
    "progress",
    "progress_state",
}


def test_status_on_connect_carries_the_sid(sim: SimServer) -> None:
    with sim.websocket("client-a") as ws:
        assert receive(ws) == {
            "type": "status",
            "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "client-a"},
        }


def test_success_messages_in_order_and_history_before_the_completion_signal(
    sim: SimServer,
) -> None:
    prompt_id = new_id()
    history_at_completion: list[dict[str, Any]] = []

    def on_message(message: Message) -> None:
        if is_done(prompt_id)(message):
            history_at_completion.append(sim.history(prompt_id))

    with sim.websocket("c1") as ws:
        receive(ws)
        assert sim.submit(image_workflow(), client_id="c1", prompt_id=prompt_id).status_code == 200
        messages = receive_until(ws, is_done(prompt_id), on_message=on_message)

    kinds = [m["type"] for m in messages if m["type"] not in {"progress_state", "progress"}]
    first_start = kinds.index("execution_start")
    assert kinds[first_start:] == [
        "execution_start",
        "execution_cached",
        "executing",
        "executing",
        "executing",
        "executed",
        "execution_success",
        "status",
        "executing",
    ]
    by_type = {m["type"]: m["data"] for m in messages}
    assert by_type["execution_start"]["prompt_id"] == prompt_id
    assert isinstance(by_type["execution_start"]["timestamp"], int)
    assert by_type["execution_cached"]["nodes"] == []
    executing = [m["data"] for m in messages if m["type"] == "executing"]
    assert [e["node"] for e in executing] == ["1", "2", "3", None]
    assert executing[0] == {"node": "1", "display_node": "1", "prompt_id": prompt_id}
    executed = by_type["executed"]
    assert executed["node"] == "3"
    assert executed["output"]["images"][0]["subfolder"] == "test"
    assert by_type["status"] == {"status": {"exec_info": {"queue_remaining": 0}}}

    # History was written before `executing node:null` was sent.
    [at_completion] = history_at_completion
    entry = at_completion[prompt_id]
    assert entry["status"]["status_str"] == "success"
    assert entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]] == [
        "execution_start",
        "execution_cached",
        "execution_success",
    ]
    assert entry["outputs"] == {"3": executed["output"]}
    number, stored_id, stored_prompt, extra_data, outputs = entry["prompt"]
    assert isinstance(number, int)
    assert stored_id == prompt_id
    assert stored_prompt["3"]["class_type"] == "SaveImage"
    assert extra_data["client_id"] == "c1"
    assert outputs == ["3"]
    assert entry["meta"]["3"]["node_id"] == "3"


def test_execution_messages_go_only_to_the_submitting_client(sim: SimServer) -> None:
    prompt_id = new_id()
    with sim.websocket("mine") as mine, sim.websocket("other") as other:
        receive(mine)
        receive(other)
        sim.submit(image_workflow(), client_id="mine", prompt_id=prompt_id)
        receive_until(mine, is_done(prompt_id))
        seen_by_other = drain(other)
    assert seen_by_other, "status broadcasts reach every client"
    assert {m["type"] for m in seen_by_other} == {"status"}


def test_history_is_empty_while_queued_or_unknown_and_queue_lists_prompts(
    sim: SimServer,
) -> None:
    sim.faults(node_delay_seconds=1.0)
    first, second = new_id(), new_id()
    sim.submit(image_workflow(seed=1), prompt_id=first)
    sim.submit(image_workflow(seed=2), prompt_id=second)
    queue = poll(
        lambda: (q := sim.http.get("/queue").json())["queue_running"] and q,
        what="a running prompt",
    )
    assert [item[1] for item in queue["queue_running"]] == [first]
    assert [item[1] for item in queue["queue_pending"]] == [second]
    assert len(queue["queue_running"][0]) == 5
    assert sim.http.get("/prompt").json() == {"exec_info": {"queue_remaining": 2}}
    assert sim.history(first) == {}
    assert sim.history(second) == {}
    assert sim.history("never-submitted") == {}

    assert sim.http.post("/queue", json={"delete": [second]}).status_code == 200
    assert sim.http.get("/queue").json()["queue_pending"] == []
    sim.faults(node_delay_seconds=0)
    assert sim.wait_history(first)["status"]["status_str"] == "success"
    assert sim.history(second) == {}


def test_history_listing_delete_and_clear(sim: SimServer) -> None:
    ids = [new_id() for _ in range(3)]
    for seed, prompt_id in enumerate(ids):
        sim.submit(image_workflow(seed=seed), prompt_id=prompt_id)
    for prompt_id in ids:
        sim.wait_history(prompt_id)
    assert list(sim.http.get("/history").json()) == ids
    assert list(sim.http.get("/history", params={"max_items": 2}).json()) == ids[1:]
    sim.http.post("/history", json={"delete": [ids[0]]})
    assert sim.history(ids[0]) == {}
    sim.http.post("/history", json={"clear": True})
    assert sim.http.get("/history").json() == {}


def test_identical_prompt_is_served_from_cache_without_a_new_file(sim: SimServer) -> None:
    first, second = new_id(), new_id()
    with sim.websocket("c") as ws:
        receive(ws)
        sim.submit(image_workflow(prefix="same/img"), client_id="c", prompt_id=first)
        receive_until(ws, is_done(first))
        sim.submit(image_workflow(prefix="same/img"), client_id="c", prompt_id=second)
        messages = receive_until(ws, is_done(second))
    cached = next(m["data"] for m in messages if m["type"] == "execution_cached")
    assert cached["nodes"] == ["1", "2", "3"]
    assert not [m for m in messages if m["type"] == "executing" and m["data"]["node"]]
    executed = [m["data"] for m in messages if m["type"] == "executed"]
    assert [e["node"] for e in executed] == ["3"]
    assert sim.wait_history(second)["outputs"] == sim.wait_history(first)["outputs"]
    assert sorted(p.name for p in (sim.output_dir / "same").iterdir()) == ["img_00001_.png"]


def test_changing_the_prefix_reruns_only_the_save_node(sim: SimServer) -> None:
    first, second = new_id(), new_id()
    with sim.websocket("c") as ws:
        receive(ws)
        sim.submit(image_workflow(prefix="a/img"), client_id="c", prompt_id=first)
        receive_until(ws, is_done(first))
        sim.submit(image_workflow(prefix="b/img"), client_id="c", prompt_id=second)
        messages = receive_until(ws, is_done(second))
    cached = next(m["data"] for m in messages if m["type"] == "execution_cached")
    assert cached["nodes"] == ["1", "2"]
    running = [m["data"]["node"] for m in messages if m["type"] == "executing"]
    assert running == ["3", None]
    assert (sim.output_dir / "b" / "img_00001_.png").is_file()


def test_an_interrupt_during_a_node_takes_effect_before_the_next_node(sim: SimServer) -> None:
    # As in ComfyUI: the running node finishes; the next one is not started.
    sim.faults(node_delay_seconds=1.0)
    prompt_id = new_id()
    with sim.websocket("c") as ws:
        receive(ws)
        sim.submit(image_workflow(), client_id="c", prompt_id=prompt_id)
        receive_until(ws, lambda m: m["type"] == "progress" and m["data"]["node"] == "1")
        assert sim.http.post("/interrupt", json={"prompt_id": "someone-else"}).status_code == 200
        assert sim.http.post("/interrupt", json={"prompt_id": prompt_id}).status_code == 200
        messages = receive_until(ws, is_done(prompt_id))
    progress_nodes = {m["data"]["node"] for m in messages if m["type"] == "progress"}
    assert progress_nodes == {"1"}, "node 1 ran to its end, node 2 never started"
    interrupted = next(m["data"] for m in messages if m["type"] == "execution_interrupted")
    assert set(interrupted) == {"prompt_id", "node_id", "node_type", "executed", "timestamp"}
    assert interrupted["prompt_id"] == prompt_id
    assert interrupted["node_id"] == "2"
    assert interrupted["node_type"] == "ImageAddNoise"
    assert interrupted["executed"] == ["1"]
    assert isinstance(interrupted["timestamp"], int)
    assert "execution_success" not in {m["type"] for m in messages}
    entry = sim.wait_history(prompt_id)
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["completed"] is False
    assert entry["status"]["messages"][-1] == ["execution_interrupted", interrupted]
    assert entry["outputs"] == {}


def test_an_interrupt_during_the_last_node_has_no_effect(sim: SimServer) -> None:
    sim.faults(node_delay_seconds=0.6)
    prompt_id = new_id()
    with sim.websocket("c") as ws:
        receive(ws)
        sim.submit(image_workflow(prefix="late/img"), client_id="c", prompt_id=prompt_id)
        receive_until(ws, lambda m: m["type"] == "progress" and m["data"]["node"] == "3")
        assert sim.http.post("/interrupt", json={"prompt_id": prompt_id}).status_code == 200
        messages = receive_until(ws, is_done(prompt_id))
    kinds = {m["type"] for m in messages}
    assert "execution_success" in kinds
    assert "execution_interrupted" not in kinds
    entry = sim.wait_history(prompt_id)
    assert entry["status"]["status_str"] == "success"
    assert (sim.output_dir / "late" / "img_00001_.png").is_file()


def test_interrupt_without_body_stops_the_running_prompt_before_its_next_node(
    sim: SimServer,
) -> None:
    sim.faults(node_delay_seconds=0.5)
    prompt_id = new_id()
    sim.submit(image_workflow(), prompt_id=prompt_id)
    poll(lambda: sim.http.get("/queue").json()["queue_running"], what="a running prompt")
    assert sim.http.post("/interrupt").status_code == 200
    entry = sim.wait_history(prompt_id)
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"


def test_prompts_run_one_at_a_time_in_order(sim: SimServer) -> None:
    ids = [new_id() for _ in range(4)]
    with sim.websocket("c") as ws:
        receive(ws)
        for seed, prompt_id in enumerate(ids):
            sim.submit(
                image_workflow(seed=seed, prefix="many/img"), client_id="c", prompt_id=prompt_id
            )
        messages = receive_until(ws, is_done(ids[-1]))
    starts = [m["data"]["prompt_id"] for m in messages if m["type"] == "execution_start"]
    assert starts == ids
    names = sorted(p.name for p in (sim.output_dir / "many").iterdir())
    assert names == [f"img_{n:05}_.png" for n in range(1, 5)]


def test_client_without_websocket_still_gets_history(sim: SimServer) -> None:
    prompt_id = new_id()
    sim.submit(image_workflow(), client_id="nobody-listening", prompt_id=prompt_id)
    assert sim.wait_history(prompt_id)["status"]["status_str"] == "success"


def test_reconnecting_with_the_same_client_id_takes_over_the_messages(sim: SimServer) -> None:
    prompt_id = new_id()
    with sim.websocket("same") as old, sim.websocket("same") as new:
        receive(old)
        receive(new)
        sim.submit(image_workflow(), client_id="same", prompt_id=prompt_id)
        receive_until(new, is_done(prompt_id))
        assert not [m for m in drain(old) if m["type"] in EXECUTION_TYPES]
