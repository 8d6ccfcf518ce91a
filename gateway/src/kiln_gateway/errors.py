from __future__ import annotations

from kiln_common.errors import ServiceError


class GatewayError(ServiceError):
    """The one error type of the gateway; mapped to ``{"error", "detail"}`` by one handler."""
