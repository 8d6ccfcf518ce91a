"""The workshop web UI: static files (plain ES modules, no build step) served by the gateway.

``/`` is the page; ``/ui/…`` its scripts, styles and icons. Everything the page needs comes
from this origin, and the Content-Security-Policy says so to the browser as well.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_DIR = Path(__file__).parent / "web_ui"

# blob: for media a researcher fetches with the token header (an <img> cannot send one).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob:; media-src 'self' blob:; "
        "script-src 'self'; style-src 'self'; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _WebFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        # Revalidate each time (ETag makes that cheap) so a deploy never mixes old and new modules.
        response.headers["Cache-Control"] = "no-cache"
        return response


def install_web(app: FastAPI) -> None:
    """Serve the UI at ``/`` and its files under ``/ui``. Fails fast if the files are missing."""
    index = WEB_DIR / "index.html"
    if not index.is_file():
        raise RuntimeError(f"the web UI is missing from the package: {index}")

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def web_index() -> FileResponse:
        return FileResponse(index, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})

    app.mount("/ui", _WebFiles(directory=WEB_DIR), name="ui")
