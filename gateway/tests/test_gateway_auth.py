from __future__ import annotations

from pathlib import Path

import pytest
from kiln_gateway.auth import (
    DEV_COOKIE_SECRET,
    DEV_RESEARCHER_TOKEN,
    ConfigError,
    resolve_cookie_secret,
    resolve_researcher_token,
)
from kiln_gateway.config import GatewaySettings

URLS = {"media_url": "http://m", "pipeline_url": "http://p", "export_url": "http://e"}


def settings(**values: object) -> GatewaySettings:
    return GatewaySettings(**URLS, **values)  # type: ignore[arg-type]


def test_dev_without_a_token_uses_the_dev_default_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert resolve_researcher_token(settings()) == DEV_RESEARCHER_TOKEN
    assert "Never do this in production" in caplog.text


def test_a_configured_token_or_file_wins(tmp_path: Path) -> None:
    assert resolve_researcher_token(settings(researcher_token="t" * 30)) == "t" * 30
    secret = tmp_path / "token"
    secret.write_text("s" * 30 + "\n")
    assert resolve_researcher_token(settings(researcher_token_file=secret)) == "s" * 30


@pytest.mark.parametrize("token", [None, DEV_RESEARCHER_TOKEN, "short"])
def test_production_refuses_a_missing_default_or_weak_token(token: str | None) -> None:
    with pytest.raises(ConfigError, match="researcher token"):
        resolve_researcher_token(settings(env="production", researcher_token=token))


def test_production_accepts_a_real_secret() -> None:
    secret = "a-real-secret-of-enough-length-123"
    assert resolve_researcher_token(settings(env="production", researcher_token=secret)) == secret


@pytest.mark.parametrize("secret", [None, DEV_COOKIE_SECRET, "short"])
def test_production_refuses_a_missing_default_or_weak_cookie_secret(secret: str | None) -> None:
    strong = "a-real-secret-of-enough-length-123"
    with pytest.raises(ConfigError, match="device cookie secret"):
        resolve_cookie_secret(
            settings(env="production", researcher_token=strong, gateway_cookie_secret=secret)
        )


def test_dev_without_a_cookie_secret_uses_the_dev_default() -> None:
    assert resolve_cookie_secret(settings()) == DEV_COOKIE_SECRET
