"""HTTP API of pipeline-service (internal): the workflow catalogue and the backends' state."""

from __future__ import annotations

from importlib.metadata import version

from fastapi import APIRouter
from kiln_contracts.api import ServiceInfo
from kiln_contracts.errors import ErrorCode
from kiln_contracts.workflows import WorkflowManifest, WorkflowSummary

from kiln_pipeline.deps import StateDep
from kiln_pipeline.errors import PipelineError

router = APIRouter()


@router.get("/workflows", response_model=list[WorkflowSummary])
async def list_workflows(state: StateDep) -> list[WorkflowSummary]:
    return [
        WorkflowSummary.of(_with_availability(t.manifest, state.settings.llm_url))
        for t in state.templates.values()
    ]


@router.get("/workflows/{name}/manifest", response_model=WorkflowManifest)
async def get_manifest(name: str, state: StateDep) -> WorkflowManifest:
    template = state.templates.get(name)
    if template is None:
        raise PipelineError(ErrorCode.UNKNOWN_WORKFLOW, f"no workflow {name!r}", 404)
    return _with_availability(template.manifest, state.settings.llm_url)


@router.get("/manifests", response_model=list[WorkflowManifest])
async def list_manifests(state: StateDep) -> list[WorkflowManifest]:
    return [
        _with_availability(t.manifest, state.settings.llm_url) for t in state.templates.values()
    ]


def _with_availability(manifest: WorkflowManifest, llm_url: str | None) -> WorkflowManifest:
    """The gateway cannot know this service's configuration: the manifest tells it."""
    if manifest.text_stages and not llm_url:
        reason = f"workflow {manifest.name!r} needs a chat endpoint for its text stages, and none is configured"
        return manifest.model_copy(update={"unavailable_reason": reason})
    return manifest


@router.get("/system", response_model=ServiceInfo)
async def system(state: StateDep) -> ServiceInfo:
    backends = [b.describe() for b in state.pool.backends]
    return ServiceInfo(
        service="pipeline-service",
        instance_id=state.settings.instance_id,
        version=version("kiln-pipeline"),
        details={"backends": backends},
    )
