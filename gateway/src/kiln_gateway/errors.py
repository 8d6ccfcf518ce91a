from __future__ import annotations

from enum import StrEnum

from kiln_common.errors import ServiceError


class GatewayError(ServiceError):
    """The one error type of the gateway; mapped to ``{"error", "detail"}`` by one handler."""


class GatewayErrorCode(StrEnum):
    """Codes only the gateway answers with (the shared ones are in kiln_contracts.errors)."""

    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    RATE_LIMITED = "rate_limited"
    QUEUE_FULL = "queue_full"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    SESSION_NOT_FOUND = "session_not_found"
