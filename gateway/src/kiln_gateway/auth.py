"""The researcher role: a bearer token from config or a secret file, compared in constant time.

In dev a fixed token is used (with a warning) when none is configured; with
``KILN_ENV=production`` a missing or default token stops start-up.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from kiln_common.settings import Environment
from kiln_contracts.errors import ErrorCode
from kiln_contracts.records import RunRequest
from pydantic import SecretStr

from kiln_gateway.config import GatewaySettings
from kiln_gateway.errors import GatewayError
from kiln_gateway.identity import Identity

logger = logging.getLogger("kiln.gateway.auth")

DEV_RESEARCHER_TOKEN = "kiln-dev-researcher-token"  # noqa: S105 - the documented dev default
DEV_COOKIE_SECRET = "kiln-dev-cookie-secret"  # noqa: S105 - the documented dev default
MIN_TOKEN_LENGTH = 24


class ConfigError(RuntimeError):
    pass


def _resolve_secret(
    value: SecretStr | None,
    file: Path | None,
    env: Environment,
    what: str,
    variable: str,
    dev_default: str,
) -> str:
    secret = value.get_secret_value() if value else ""
    if not secret and file:
        secret = file.read_text().strip()
    if env == Environment.PRODUCTION:
        if not secret or secret == dev_default:
            raise ConfigError(
                f"KILN_ENV=production needs a {what}: set {variable} or "
                f"{variable}_FILE (not the dev default)"
            )
        if len(secret) < MIN_TOKEN_LENGTH:
            raise ConfigError(f"the {what} must have at least {MIN_TOKEN_LENGTH} characters")
        return secret
    if not secret:
        logger.warning(
            "no %s configured; using the dev default. Never do this in production.", what
        )
        return dev_default
    return secret


def resolve_researcher_token(settings: GatewaySettings) -> str:
    return _resolve_secret(
        settings.researcher_token,
        settings.researcher_token_file,
        settings.env,
        "researcher token",
        "KILN_RESEARCHER_TOKEN",
        DEV_RESEARCHER_TOKEN,
    )


def resolve_cookie_secret(settings: GatewaySettings) -> str:
    """Signs device cookies; every gateway replica must share it."""
    return _resolve_secret(
        settings.gateway_cookie_secret,
        settings.gateway_cookie_secret_file,
        settings.env,
        "device cookie secret",
        "KILN_GATEWAY_COOKIE_SECRET",
        DEV_COOKIE_SECRET,
    )


def is_researcher(request: Request) -> bool:
    """True with a valid researcher token, False without any; a wrong token is a 403, never a
    silent downgrade to participant."""
    header = request.headers.get("authorization", "")
    if not header:
        return False
    expected: str = request.app.state.gateway.researcher_token
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise GatewayError(
            ErrorCode.UNAUTHORIZED, "researcher token required (Authorization: Bearer …)", 401
        )
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise GatewayError(
            ErrorCode.FORBIDDEN, "this token does not grant the researcher role", 403
        )
    return True


def require_researcher(request: Request) -> None:
    if not is_researcher(request):
        raise GatewayError(
            ErrorCode.UNAUTHORIZED, "researcher token required (Authorization: Bearer …)", 401
        )


def current_caller(request: Request) -> Caller:
    identity: Identity = request.state.identity
    return Caller(identity, is_researcher(request))


@dataclass(frozen=True)
class Caller:
    """Who is asking: always a device (the cookie); sometimes also a researcher (the token)."""

    identity: Identity
    researcher: bool

    def may_see(self, request: RunRequest) -> bool:
        if self.researcher:
            return True
        if request.device_id is not None and request.device_id == self.identity.device_id:
            return True
        return request.session_id is not None and request.session_id == self.identity.session_id


ResearcherDep = Annotated[None, Depends(require_researcher)]
CallerDep = Annotated[Caller, Depends(current_caller)]
