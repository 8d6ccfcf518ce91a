"""``python -m comfyui_sim`` and the app factory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import comfyui_sim.__main__ as entrypoint
import pytest
from comfyui_sim.app import create_app
from comfyui_sim.config import Settings
from comfyui_sim.sim import Simulator
from fastapi import FastAPI


def test_module_entrypoint_runs_the_factory_with_the_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(entrypoint.uvicorn, "run", lambda *a, **k: calls.append((a, k)))
    monkeypatch.delenv("COMFYUI_SIM_OUTPUT_DIR", raising=False)
    entrypoint.main(["--port", "9999", "--output-dir", str(tmp_path)])
    [(args, kwargs)] = calls
    assert args == ("comfyui_sim.app:create_app",)
    assert kwargs["factory"] is True
    assert kwargs["port"] == 9999
    assert Settings().output_dir == tmp_path


def _folders_during_lifespan(app: FastAPI) -> tuple[Path, Path]:
    async def run() -> tuple[Path, Path]:
        async with app.router.lifespan_context(app):
            sim = app.state.sim
            assert isinstance(sim, Simulator)
            assert sim.folders.output.is_dir()
            assert sim.folders.temp.is_dir()
            return sim.folders.output, sim.folders.temp

    return asyncio.run(run())


def test_factory_reads_the_environment_and_creates_folders_at_startup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    output = tmp_path / "deep" / "output"
    monkeypatch.setenv("COMFYUI_SIM_OUTPUT_DIR", str(output))
    app = create_app()
    assert not output.exists(), "nothing happens before startup"
    assert _folders_during_lifespan(app)[0] == output


def test_unset_output_dir_becomes_a_temporary_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMFYUI_SIM_OUTPUT_DIR", raising=False)
    output, temp = _folders_during_lifespan(create_app(Settings()))
    assert output.is_absolute()
    assert output != temp
