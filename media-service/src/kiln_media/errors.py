from __future__ import annotations

from kiln_common.errors import ServiceError


class MediaError(ServiceError):
    """The one error type of media-service; mapped to ``{"error", "detail"}`` by one handler."""
