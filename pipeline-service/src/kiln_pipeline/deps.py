from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kiln_pipeline.state import PipelineState


def get_state(request: Request) -> PipelineState:
    state: PipelineState = request.app.state.pipeline
    return state


StateDep = Annotated[PipelineState, Depends(get_state)]
