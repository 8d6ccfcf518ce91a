"""Before ``make dev`` starts anything: does each real backend it was told about answer?

A workshop that believes it runs on the school's GPU box but silently runs on the simulator is
the failure this prevents: an unreachable backend stops start-up, named.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

CHECK_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class BackendCheck:
    kind: str  # "ComfyUI" or "chat endpoint"
    url: str
    variable: str  # where it was configured
    answers: bool
    detail: str

    def line(self) -> str:
        state = "answers" if self.answers else "DOES NOT ANSWER"
        return f"  {self.kind:<14}: {self.url}  {state} ({self.detail})"

    def problem(self) -> str:
        return (
            f"the {self.kind} at {self.url} ({self.variable}) does not answer: {self.detail}. "
            f"Start it or fix {self.variable} in kiln.env or the environment; "
            "kiln does not fall back to the simulator."
        )


def _get(client: httpx.Client, url: str) -> httpx.Response | str:
    if not url.startswith(("http://", "https://")):
        return "not an http(s) URL"
    try:
        return client.get(url)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def check_comfyui(client: httpx.Client, url: str) -> BackendCheck:
    answer = _get(client, f"{url.rstrip('/')}/system_stats")
    if isinstance(answer, str):
        return BackendCheck("ComfyUI", url, "KILN_COMFYUI_URLS", False, answer)
    if answer.status_code != 200:
        detail = f"GET /system_stats answered {answer.status_code}"
        return BackendCheck("ComfyUI", url, "KILN_COMFYUI_URLS", False, detail)
    try:
        system = answer.json().get("system", {})
        version = system.get("comfyui_version") or "version not reported"
    except (ValueError, AttributeError):
        return BackendCheck(
            "ComfyUI", url, "KILN_COMFYUI_URLS", False, "/system_stats is not ComfyUI's JSON"
        )
    return BackendCheck("ComfyUI", url, "KILN_COMFYUI_URLS", True, f"ComfyUI {version}")


def check_chat_endpoint(client: httpx.Client, url: str) -> BackendCheck:
    """Ollama and llama.cpp's server both answer the OpenAI-compatible ``GET /v1/models``."""
    answer = _get(client, f"{url.rstrip('/')}/v1/models")
    if isinstance(answer, str):
        return BackendCheck("chat endpoint", url, "KILN_LLM_URL", False, answer)
    if answer.status_code != 200:
        detail = f"GET /v1/models answered {answer.status_code}"
        return BackendCheck("chat endpoint", url, "KILN_LLM_URL", False, detail)
    try:
        models = [str(m["id"]) for m in answer.json()["data"]]
    except (ValueError, KeyError, TypeError):
        return BackendCheck(
            "chat endpoint", url, "KILN_LLM_URL", False, "/v1/models is not an OpenAI model list"
        )
    shown = ", ".join(models[:5]) + (" …" if len(models) > 5 else "")
    return BackendCheck("chat endpoint", url, "KILN_LLM_URL", True, f"models: {shown or 'none'}")


def check_backends(
    comfyui_urls: list[str], llm_url: str | None, timeout: float = CHECK_TIMEOUT_SECONDS
) -> list[BackendCheck]:
    with httpx.Client(timeout=timeout) as client:
        checks = [check_comfyui(client, url) for url in comfyui_urls]
        if llm_url:
            checks.append(check_chat_endpoint(client, llm_url))
    return checks
