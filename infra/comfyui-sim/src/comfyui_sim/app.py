"""The HTTP and websocket surface: ComfyUI's routes (also under ``/api``) plus ``/sim``."""

from __future__ import annotations

import email.policy
import json
import logging
import mimetypes
import os
import platform
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from email.parser import BytesParser
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast

from fastapi import APIRouter, FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError

from comfyui_sim import COMFYUI_VERSION
from comfyui_sim.config import Settings
from comfyui_sim.faults import FaultsUpdate, ModelsUpdate, RestartRequest
from comfyui_sim.sim import Simulator, prepare_folders

log = logging.getLogger("comfyui_sim")

# aiohttp's answer when a handler raises, which is what ComfyUI gives for a non-JSON body.
AIOHTTP_500 = "500 Internal Server Error\n\nServer got itself in trouble"
CLOSE_TRY_AGAIN_LATER = 1013
CONTENT_TYPES = {
    ".png": "image/png",
    ".webp": "image/webp",
    ".flac": "audio/flac",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
    ".opus": "audio/ogg",
    ".json": "application/json",
}
FORCED_DOWNLOAD = {"text/html", "text/html-sandboxed", "application/xhtml+xml", "text/javascript"}
FORCED_DOWNLOAD |= {"text/css"}
ANNOTATIONS = {" [output]": "output", " [input]": "input", " [temp]": "temp"}


def sim_of(connection: Request | WebSocket) -> Simulator:
    return cast(Simulator, connection.app.state.sim)


# aiohttp's json_response says charset=utf-8; Starlette's would say plain application/json.
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
# What ComfyUI 0.3.64 reports beside its own version (its requirements.txt pins, and the
# templates package it installs).
REQUIRED_FRONTEND_VERSION = "1.27.10"
INSTALLED_TEMPLATES_VERSION = "0.1.94"


def json_response(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=JSON_CONTENT_TYPE)


async def read_json(request: Request) -> Any:
    """The body as JSON, or ``None`` when it is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _memory() -> tuple[int, int]:
    total = free = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                key, _, rest = line.partition(":")
                if key == "MemTotal":
                    total = int(rest.split()[0]) * 1024
                elif key == "MemAvailable":
                    free = int(rest.split()[0]) * 1024
    except OSError:
        page = os.sysconf("SC_PAGE_SIZE")
        total = page * os.sysconf("SC_PHYS_PAGES")
        free = page * os.sysconf("SC_AVPHYS_PAGES")
    return total, free


def _content_type(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    content_type = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(filename)[0]
    content_type = content_type or "application/octet-stream"
    return "application/octet-stream" if content_type in FORCED_DOWNLOAD else content_type


class ComfyRouter(APIRouter):
    """aiohttp answers HEAD on every GET route (``allow_head``), so ComfyUI does too."""

    def get(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.api_route(path, methods=["GET", "HEAD"], **kwargs)


def build_comfy_router() -> APIRouter:
    router = ComfyRouter()

    @router.post("/prompt")
    async def post_prompt(request: Request) -> Response:
        sim = sim_of(request)
        body = await read_json(request)
        rejection = sim.faults.reject_prompts_with_status
        if rejection is not None:
            sim.record_rejection(body, rejection)
            return PlainTextResponse(f"{rejection}: {HTTPStatus(rejection).phrase}", rejection)
        if body is None:
            return PlainTextResponse(AIOHTTP_500, 500)
        try:
            submission = await sim.submit(body)
        except (TypeError, ValueError) as ex:
            log.warning("POST /prompt crashed as ComfyUI would: %r", ex)
            return PlainTextResponse(AIOHTTP_500, 500)
        return json_response(submission.body, submission.status)

    @router.get("/prompt")
    async def get_prompt(request: Request) -> JSONResponse:
        return json_response(sim_of(request).queue_info())

    @router.get("/queue")
    async def get_queue(request: Request) -> JSONResponse:
        queue = sim_of(request).queue
        running = [queue.running.public()] if queue.running is not None else []
        pending = [item.public() for item in queue.pending()]
        return json_response({"queue_running": running, "queue_pending": pending})

    @router.post("/queue")
    async def post_queue(request: Request) -> Response:
        sim = sim_of(request)
        body = await read_json(request)
        if not isinstance(body, dict):
            return PlainTextResponse(AIOHTTP_500, 500)
        if body.get("clear"):
            await sim.clear_queue()
        if isinstance(body.get("delete"), list):
            await sim.delete_queued(body["delete"])
        return Response(status_code=200)

    @router.post("/interrupt")
    async def post_interrupt(request: Request) -> Response:
        body = await read_json(request)
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        sim_of(request).interrupt_running(str(prompt_id) if prompt_id else None)
        return Response(status_code=200)

    @router.get("/history")
    async def get_history(request: Request) -> Response:
        query = request.query_params
        try:
            max_items = int(query["max_items"]) if "max_items" in query else None
            offset = int(query["offset"]) if "offset" in query else -1
        except ValueError:
            return PlainTextResponse(AIOHTTP_500, 500)
        return json_response(sim_of(request).history.get_all(max_items=max_items, offset=offset))

    @router.get("/history/{prompt_id}")
    async def get_history_item(request: Request, prompt_id: str) -> JSONResponse:
        return json_response(sim_of(request).history.get(prompt_id))

    @router.post("/history")
    async def post_history(request: Request) -> Response:
        history = sim_of(request).history
        body = await read_json(request)
        if not isinstance(body, dict):
            return PlainTextResponse(AIOHTTP_500, 500)
        if body.get("clear"):
            history.clear()
        if isinstance(body.get("delete"), list):
            for prompt_id in body["delete"]:
                history.delete(str(prompt_id))
        return Response(status_code=200)

    @router.get("/view")
    async def view(request: Request) -> Response:
        return _view(sim_of(request), request)

    @router.post("/upload/image")
    async def upload_image(request: Request) -> Response:
        return _upload_image(sim_of(request), await request.body(), request.headers)

    @router.get("/system_stats")
    async def system_stats(request: Request) -> JSONResponse:
        ram_total, ram_free = _memory()
        return json_response(
            {
                "system": {
                    "os": os.name,
                    "ram_total": ram_total,
                    "ram_free": ram_free,
                    "comfyui_version": COMFYUI_VERSION,
                    "required_frontend_version": REQUIRED_FRONTEND_VERSION,
                    "installed_templates_version": INSTALLED_TEMPLATES_VERSION,
                    "python_version": sys.version,
                    "pytorch_version": "none (simulator)",
                    "embedded_python": False,
                    "argv": sys.argv,
                },
                "devices": [
                    {
                        "name": "cpu",
                        "type": "cpu",
                        "index": None,
                        "vram_total": ram_total,
                        "vram_free": ram_free,
                        "torch_vram_total": ram_total,
                        "torch_vram_free": ram_free,
                    }
                ],
                "simulator": {"machine": platform.machine()},
            }
        )

    @router.get("/object_info")
    async def object_info(request: Request) -> JSONResponse:
        sim = sim_of(request)
        files = sim.folder_files()
        return json_response({name: node.object_info(files) for name, node in sim.registry.items()})

    @router.get("/object_info/{node_class}")
    async def object_info_node(request: Request, node_class: str) -> JSONResponse:
        sim = sim_of(request)
        node = sim.registry.get(node_class)
        return json_response(
            {node_class: node.object_info(sim.folder_files())} if node is not None else {}
        )

    @router.get("/features")
    async def features() -> JSONResponse:
        return json_response(_feature_flags())

    @router.get("/embeddings")
    async def embeddings() -> JSONResponse:
        return json_response([])

    @router.get("/extensions")
    async def extensions() -> JSONResponse:
        return json_response([])

    @router.websocket("/ws")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await _serve_websocket(sim_of(websocket), websocket)

    return router


def _feature_flags() -> dict[str, Any]:
    return {"supports_preview_metadata": True, "max_upload_size": 100 * 1024 * 1024}


def _view(sim: Simulator, request: Request) -> Response:
    query = request.query_params
    if "filename" not in query:
        return Response(status_code=404)
    filename = query["filename"]
    base: Path | None = None
    for suffix, kind in ANNOTATIONS.items():
        if filename.endswith(suffix):
            filename = filename[: -len(suffix)]
            base = sim.folders.by_type(kind)
            break
    if not filename or filename[0] in "/\\" or ".." in filename or "\x00" in filename:
        return Response(status_code=400)
    if base is None:
        base = sim.folders.by_type(query.get("type", "output"))
    if base is None:
        return Response(status_code=400)
    folder = base
    subfolder = query.get("subfolder", "")
    if subfolder:
        if "\x00" in subfolder:
            return Response(status_code=400)
        folder = Path(os.path.abspath(os.path.join(base, subfolder)))
        if os.path.commonpath((folder, base)) != str(base):
            return Response(status_code=403)
    path = folder / os.path.basename(filename)
    # Never serve anything outside the folder, symlinks included.
    real_base = os.path.realpath(base)
    if os.path.commonpath((os.path.realpath(path), real_base)) != real_base:
        return Response(status_code=403)
    if not path.is_file():
        return Response(status_code=404)
    name = path.name
    return FileResponse(
        path,
        media_type=_content_type(name),
        headers={"Content-Disposition": f'filename="{name}"'},
    )


def _form_fields(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """A multipart/form-data body as {field: (filename, bytes)}; {} if it is not one."""
    if not content_type.lower().startswith("multipart/form-data"):
        return {}
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return {}
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and name not in fields:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            fields[name] = (part.get_filename(), data)
    return fields


def _upload_image(sim: Simulator, body: bytes, headers: Mapping[str, str]) -> Response:
    """ComfyUI's ``image_upload``: the ``image`` file into ``type``'s folder (default input)
    under ``subfolder``; a name taken by different bytes becomes ``name (1).ext`` unless
    ``overwrite`` is true/1, the same bytes are not written twice; answers the name it used.
    ComfyUI answers 400 with an empty body for a missing file or name and a path outside the
    folder (an unknown ``type`` makes ComfyUI fail with a 500; here it is a 400 as well)."""
    fields = _form_fields(body, headers.get("content-type", ""))
    text = {key: value.decode("utf-8", "replace") for key, (_, value) in fields.items()}
    kind = text.get("type") or "input"
    base = sim.folders.by_type(kind)
    if "image" not in fields or base is None:
        return Response(status_code=400)
    filename, data = fields["image"]
    if not filename or "\x00" in filename:
        return Response(status_code=400)
    subfolder = text.get("subfolder", "")
    folder = os.path.join(base, os.path.normpath(subfolder))
    path = os.path.abspath(os.path.join(folder, filename))
    if "\x00" in subfolder or os.path.commonpath((str(base), path)) != str(base):
        return Response(status_code=400)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    stem, extension = os.path.splitext(filename)
    duplicate = False
    if text.get("overwrite") not in ("true", "1"):
        number = 1
        while os.path.exists(path):
            if Path(path).read_bytes() == data:
                duplicate = True
                break
            filename = f"{stem} ({number}){extension}"
            path = os.path.join(folder, filename)
            number += 1
    if not duplicate:
        Path(path).write_bytes(data)
    return json_response({"name": filename, "subfolder": subfolder, "type": kind})


async def _serve_websocket(sim: Simulator, websocket: WebSocket) -> None:
    if sim.unavailable():
        await websocket.close(code=CLOSE_TRY_AGAIN_LATER)
        return
    await websocket.accept()
    sid = websocket.query_params.get("clientId", "") or uuid.uuid4().hex
    connection = sim.hub.register(sid, websocket)
    try:
        await sim.hub.send_to(connection, "status", {"status": sim.queue_info(), "sid": sid})
        if sim.current_client_id == sid and sim.last_node_id is not None:
            await sim.hub.send_to(connection, "executing", {"node": sim.last_node_id})
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text:
                await _client_message(sim, connection, text)
    except RuntimeError as ex:  # receive() after the server closed the socket
        log.debug("websocket %s ended: %r", sid, ex)
    finally:
        sim.hub.closed(connection)


async def _client_message(sim: Simulator, connection: Any, text: str) -> None:
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        return
    if isinstance(message, dict) and message.get("type") == "feature_flags":
        await sim.hub.send_to(connection, "feature_flags", _feature_flags())


def build_sim_router() -> APIRouter:
    router = APIRouter(prefix="/sim", tags=["simulator"])

    @router.get("/faults")
    async def get_faults(request: Request) -> JSONResponse:
        return json_response(sim_of(request).faults.model_dump())

    @router.post("/faults")
    async def post_faults(request: Request) -> JSONResponse:
        body = await read_json(request)
        try:
            update = FaultsUpdate.model_validate(body if body is not None else {})
        except ValidationError as ex:
            return json_response({"error": "invalid faults", "details": ex.errors()}, 422)
        return json_response(await sim_of(request).update_faults(update))

    @router.get("/models")
    async def get_models(request: Request) -> JSONResponse:
        return json_response(sim_of(request).models)

    @router.post("/models")
    async def post_models(request: Request) -> JSONResponse:
        body = await read_json(request)
        try:
            update = ModelsUpdate.model_validate(body if body is not None else {})
        except ValidationError as ex:
            return json_response({"error": "invalid models", "details": ex.errors()}, 422)
        sim = sim_of(request)
        for folder, names in update.model_dump(exclude_none=True).items():
            sim.models[folder] = list(names)
        return json_response(sim.models)

    @router.post("/restart")
    async def post_restart(request: Request) -> JSONResponse:
        body = await read_json(request)
        try:
            restart = RestartRequest.model_validate(body if isinstance(body, dict) else {})
        except ValidationError as ex:
            return json_response({"error": "invalid restart", "details": ex.errors()}, 422)
        return json_response(await sim_of(request).restart(restart.downtime_seconds))

    @router.get("/prompts")
    async def get_prompts(request: Request) -> JSONResponse:
        return json_response(list(sim_of(request).received))

    @router.delete("/prompts")
    async def delete_prompts(request: Request) -> Response:
        sim_of(request).received.clear()
        return Response(status_code=204)

    @router.get("/state")
    async def get_state(request: Request) -> JSONResponse:
        sim = sim_of(request)
        return json_response(
            {
                "output_dir": str(sim.folders.output),
                "temp_dir": str(sim.folders.temp),
                "input_dir": str(sim.folders.input),
                "websocket_clients": sim.hub.client_ids,
                "running": sim.queue.running.prompt_id if sim.queue.running else None,
                "pending": [item.prompt_id for item in sim.queue.pending()],
                "history_size": len(sim.history),
                "unavailable": sim.unavailable(),
            }
        )

    return router


def create_app(settings: Settings | None = None) -> FastAPI:
    """The simulator app; settings come from the environment unless given."""
    resolved = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        folders = prepare_folders(resolved)
        sim = Simulator(resolved, folders)
        app.state.sim = sim
        sim.start()
        log.info("ComfyUI simulator ready, output dir %s", folders.output)
        try:
            yield
        finally:
            await sim.stop()

    app = FastAPI(title="ComfyUI simulator", version=COMFYUI_VERSION, lifespan=lifespan)

    @app.middleware("http")
    async def downtime(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        sim = getattr(request.app.state, "sim", None)
        if (
            isinstance(sim, Simulator)
            and sim.unavailable()
            and not request.url.path.startswith("/sim")
        ):
            return PlainTextResponse("503: Service Unavailable (simulated restart)", 503)
        return await call_next(request)

    comfy = build_comfy_router()
    app.include_router(comfy)
    app.include_router(comfy, prefix="/api")
    app.include_router(build_sim_router())
    return app
