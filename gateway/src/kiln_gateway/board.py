"""The teacher's board (researcher token): one workshop session as the projector shows it, the QR
code of its join link, and closing it. The board's newest results come from ``GET /api/runs``.

The QR code is drawn here, as SVG, by segno: the page never asks a third party for it, and a room
without internet shows it all the same.
"""

from __future__ import annotations

import io

import segno
from fastapi import APIRouter, Request
from fastapi.responses import Response
from kiln_common.params import SessionIdPath
from pydantic import BaseModel, ConfigDict, Field

from kiln_gateway.api import ERRORS
from kiln_gateway.auth import ResearcherDep
from kiln_gateway.deps import StateDep
from kiln_gateway.errors import GatewayError, GatewayErrorCode
from kiln_gateway.sessions import WorkshopSession
from kiln_gateway.state import GatewayState

router = APIRouter(prefix="/api/sessions", tags=["sessions"], responses=ERRORS)


class SessionBoard(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session": {
                        "session_id": "5b8f0a8e-1f0e-4c55-9d1a-3c2b1a0f9e8d",
                        "code": "K7QX2M",
                        "title": "Year 5 art, Tuesday",
                        "safety_level": "kids",
                        "created_at": "2026-11-21T09:00:00Z",
                        "expires_at": "2026-11-21T21:00:00Z",
                    },
                    "open": True,
                    "join_url": "http://192.168.1.20:8080/#/join/K7QX2M",
                    "devices_joined": 17,
                }
            ]
        }
    )

    session: WorkshopSession
    open: bool = Field(description="False once it was closed or its time ran out.")
    join_url: str = Field(description="Opening it on a tablet joins the session.")
    devices_joined: int = Field(ge=0, description="Devices that joined with the code or link.")


def join_url(state: GatewayState, request: Request, code: str) -> str:
    base = state.settings.gateway_public_url or str(request.base_url).rstrip("/")
    return f"{base}/#/join/{code}"


def join_qr_svg(url: str) -> bytes:
    """Black on white with the standard quiet zone, sized by the page (no width/height)."""
    out = io.BytesIO()
    segno.make(url, error="m").save(
        out,
        kind="svg",
        scale=1,
        border=4,
        dark="#000",
        light="#fff",
        xmldecl=False,
        omitsize=True,
        title=url,
    )
    return out.getvalue()


async def _session(state: GatewayState, session_id: str) -> WorkshopSession:
    session = await state.sessions.find(session_id)
    if session is None:
        raise GatewayError(
            GatewayErrorCode.SESSION_NOT_FOUND, f"no workshop session {session_id}", 404
        )
    return session


@router.get("/{session_id}/board", response_model=SessionBoard)
async def session_board(
    session_id: SessionIdPath, request: Request, state: StateDep, _: ResearcherDep
) -> SessionBoard:
    """Researcher only: what the board shows of one session, open or ended."""
    session = await _session(state, session_id)
    return SessionBoard(
        session=session,
        open=not session.expired,
        join_url=join_url(state, request, session.code),
        devices_joined=await state.sessions.member_count(session_id),
    )


@router.get(
    "/{session_id}/join-qr.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {"schema": {"type": "string"}}}}},
)
async def session_join_qr(
    session_id: SessionIdPath, request: Request, state: StateDep, _: ResearcherDep
) -> Response:
    """Researcher only: the QR code of the session's join link, as SVG."""
    session = await _session(state, session_id)
    return Response(
        join_qr_svg(join_url(state, request, session.code)),
        media_type="image/svg+xml",
        headers={"Cache-Control": "no-store"},  # it carries a code that works
    )


@router.post("/{session_id}/close", response_model=WorkshopSession)
async def close_session(
    session_id: SessionIdPath, state: StateDep, _: ResearcherDep
) -> WorkshopSession:
    """Researcher only: end the session now. Its code stops working, the devices in it leave it,
    and its runs stay. Closing it again changes nothing."""
    closed = await state.sessions.close(session_id)
    if closed is None:
        raise GatewayError(
            GatewayErrorCode.SESSION_NOT_FOUND, f"no workshop session {session_id}", 404
        )
    return closed
