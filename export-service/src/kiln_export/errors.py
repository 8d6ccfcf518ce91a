from __future__ import annotations

from kiln_common.errors import ServiceError


class ExportServiceError(ServiceError):
    """The one error type of export-service; mapped to ``{"error", "detail"}`` by one handler."""
