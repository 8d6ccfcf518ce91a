from __future__ import annotations

from fastapi.testclient import TestClient
from llm_sim.app import create_app

CHAT = "/v1/chat/completions"
BODY = {
    "model": "tiny",
    "messages": [
        {"role": "system", "content": "Translate into English."},
        {"role": "user", "content": "ein Vogel"},
    ],
}


def test_answers_like_an_openai_chat_endpoint_and_deterministically() -> None:
    client = TestClient(create_app())
    first = client.post(CHAT, json=BODY)
    assert first.status_code == 200
    message = first.json()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "[tiny] translate: EIN VOGEL"}
    assert client.post(CHAT, json=BODY).json()["choices"][0]["message"] == message
    assert len(client.get("/sim/requests").json()) == 2


def test_a_500_fault_answers_the_next_requests_with_errors_then_recovers() -> None:
    client = TestClient(create_app())
    assert client.post("/sim/faults", json={"error_500": 1}).status_code == 200
    assert client.post(CHAT, json=BODY).status_code == 500
    assert client.post(CHAT, json=BODY).status_code == 200


def test_a_request_without_messages_is_refused() -> None:
    client = TestClient(create_app())
    assert client.post(CHAT, json={"model": "m", "messages": []}).status_code == 422


def test_lists_models_like_ollama_and_llama_cpp() -> None:
    answer = TestClient(create_app()).get("/v1/models")
    assert answer.status_code == 200
    assert [m["id"] for m in answer.json()["data"]] == ["any"]
