"""The researcher role: a bearer token from config or a secret file, compared in constant time.

In dev a fixed token is used (with a warning) when none is configured; with
``KILN_ENV=production`` a missing or default token stops start-up.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import Depends, Request
from kiln_common.settings import Environment
from kiln_contracts.errors import ErrorCode

from kiln_gateway.config import GatewaySettings
from kiln_gateway.errors import GatewayError

logger = logging.getLogger("kiln.gateway.auth")

DEV_RESEARCHER_TOKEN = "kiln-dev-researcher-token"  # noqa: S105 - the documented dev default
MIN_TOKEN_LENGTH = 24


class ConfigError(RuntimeError):
    pass


def resolve_researcher_token(settings: GatewaySettings) -> str:
    token = settings.researcher_token.get_secret_value() if settings.researcher_token else ""
    if not token and settings.researcher_token_file:
        token = settings.researcher_token_file.read_text().strip()
    if settings.env == Environment.PRODUCTION:
        if not token or token == DEV_RESEARCHER_TOKEN:
            raise ConfigError(
                "KILN_ENV=production needs a researcher token: set KILN_RESEARCHER_TOKEN or "
                "KILN_RESEARCHER_TOKEN_FILE (not the dev default)"
            )
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"the researcher token must have at least {MIN_TOKEN_LENGTH} characters"
            )
        return token
    if not token:
        logger.warning(
            "no researcher token configured; using the dev default %r. Never do this in production.",
            DEV_RESEARCHER_TOKEN,
        )
        return DEV_RESEARCHER_TOKEN
    return token


def require_researcher(request: Request) -> None:
    expected: str = request.app.state.gateway.researcher_token
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise GatewayError(
            ErrorCode.UNAUTHORIZED, "researcher token required (Authorization: Bearer …)", 401
        )
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise GatewayError(
            ErrorCode.FORBIDDEN, "this token does not grant the researcher role", 403
        )


ResearcherDep = Annotated[None, Depends(require_researcher)]
