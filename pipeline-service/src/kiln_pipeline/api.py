"""HTTP API of pipeline-service (internal): the workflow catalogue and the backends' state."""

from __future__ import annotations

from importlib.metadata import version

from fastapi import APIRouter
from kiln_contracts.api import ServiceInfo
from kiln_contracts.errors import ErrorCode
from kiln_contracts.workflows import WorkflowManifest, WorkflowSummary

from kiln_pipeline.capabilities import problems, unavailable_reason
from kiln_pipeline.deps import StateDep
from kiln_pipeline.errors import PipelineError
from kiln_pipeline.state import PipelineState
from kiln_pipeline.templates import WorkflowTemplate

router = APIRouter()


@router.get("/workflows", response_model=list[WorkflowSummary])
async def list_workflows(state: StateDep) -> list[WorkflowSummary]:
    return [WorkflowSummary.of(_with_availability(t, state)) for t in state.templates.values()]


@router.get("/workflows/{name}/manifest", response_model=WorkflowManifest)
async def get_manifest(name: str, state: StateDep) -> WorkflowManifest:
    template = state.templates.get(name)
    if template is None:
        raise PipelineError(ErrorCode.UNKNOWN_WORKFLOW, f"no workflow {name!r}", 404)
    return _with_availability(template, state)


@router.get("/manifests", response_model=list[WorkflowManifest])
async def list_manifests(state: StateDep) -> list[WorkflowManifest]:
    return [_with_availability(t, state) for t in state.templates.values()]


def _with_availability(template: WorkflowTemplate, state: PipelineState) -> WorkflowManifest:
    """The gateway cannot know this service's configuration nor what its backends have: the
    manifest tells it (a chat endpoint for text stages; node classes and model files, as each
    backend's /object_info listed them at the last health check)."""
    manifest = template.manifest
    if manifest.text_stages and not state.settings.llm_url:
        reason = f"workflow {manifest.name!r} needs a chat endpoint for its text stages, and none is configured"
        return manifest.model_copy(update={"unavailable_reason": reason})
    graph = template.default_graph()
    missing = unavailable_reason({b.name: problems(graph, b.nodes) for b in state.pool.backends})
    if missing is not None:
        return manifest.model_copy(update={"unavailable_reason": missing})
    return manifest


@router.get("/system", response_model=ServiceInfo)
async def system(state: StateDep) -> ServiceInfo:
    defaults = {name: t.default_graph() for name, t in state.templates.items()}
    backends = [
        {
            **b.describe(),
            # What each workflow (at its defaults) needs that this backend does not have.
            "missing": {
                name: found
                for name, graph in defaults.items()
                if (found := problems(graph, b.nodes))
            },
        }
        for b in state.pool.backends
    ]
    return ServiceInfo(
        service="pipeline-service",
        instance_id=state.settings.instance_id,
        version=version("kiln-pipeline"),
        details={"backends": backends},
    )
