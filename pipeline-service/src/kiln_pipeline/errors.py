from __future__ import annotations

from kiln_common.errors import ServiceError


class PipelineError(ServiceError):
    """The one error type of pipeline-service."""
