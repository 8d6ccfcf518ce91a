"""The start-up check of real backends, against fake HTTP answers (the integration test in
tests/test_devstack.py runs it against real processes)."""

from __future__ import annotations

import httpx
from kiln_devstack.backends import check_chat_endpoint, check_comfyui


def _client(handler: httpx.MockTransport) -> httpx.Client:
    return httpx.Client(transport=handler)


def test_comfyui_that_answers_reports_its_version() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/system_stats"
        return httpx.Response(200, json={"system": {"comfyui_version": "0.3.40"}, "devices": []})

    check = check_comfyui(_client(httpx.MockTransport(answer)), "http://gpu:8188/")
    assert check.answers
    assert check.detail == "ComfyUI 0.3.40"
    assert "answers" in check.line()


def test_comfyui_that_cannot_be_reached_is_named_with_its_variable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    check = check_comfyui(_client(httpx.MockTransport(refuse)), "http://10.9.9.9:8188")
    assert not check.answers
    problem = check.problem()
    assert "ComfyUI at http://10.9.9.9:8188 (KILN_COMFYUI_URLS) does not answer" in problem
    assert "connection refused" in problem
    assert "does not fall back to the simulator" in problem


def test_something_else_on_the_port_is_not_comfyui() -> None:
    def html(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>a router's login page</html>")

    assert not check_comfyui(_client(httpx.MockTransport(html)), "http://10.0.0.1").answers
    missing = httpx.MockTransport(lambda _: httpx.Response(404))
    assert check_comfyui(_client(missing), "http://10.0.0.1").detail == (
        "GET /system_stats answered 404"
    )


def test_a_url_that_is_not_http_is_refused_without_asking() -> None:
    def never(_: httpx.Request) -> httpx.Response:
        raise AssertionError("asked")

    check = check_comfyui(_client(httpx.MockTransport(never)), "10.0.0.5:8188")
    assert (check.answers, check.detail) == (False, "not an http(s) URL")


def test_chat_endpoint_lists_its_models() -> None:
    def models(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/models"
        return httpx.Response(200, json={"object": "list", "data": [{"id": "llama3.2:3b"}]})

    check = check_chat_endpoint(_client(httpx.MockTransport(models)), "http://127.0.0.1:11434")
    assert check.answers
    assert check.detail == "models: llama3.2:3b"


def test_chat_endpoint_that_answers_500_does_not_count() -> None:
    check = check_chat_endpoint(
        _client(httpx.MockTransport(lambda _: httpx.Response(500))), "http://127.0.0.1:8081"
    )
    assert not check.answers
    assert "(KILN_LLM_URL)" in check.problem()
