"""Settings every service shares. Each service subclasses with its own fields; all read
``KILN_*`` environment variables and fail fast on anything invalid."""

from __future__ import annotations

import os
import socket
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _absolute(path: Path) -> Path:
    # A relative root resolved against a working directory is how two instances once wrote
    # to two storage roots; refuse it.
    if not path.is_absolute():
        raise ValueError(f"must be an absolute path, got {str(path)!r}")
    return path


AbsolutePath = Annotated[Path, AfterValidator(_absolute)]


def _split_urls(value: object) -> object:
    if isinstance(value, str):
        return [u.strip().rstrip("/") for u in value.split(",") if u.strip()]
    return value


UrlList = Annotated[list[str], NoDecode, Field(default_factory=list)]


class Environment(StrEnum):
    DEV = "dev"
    PRODUCTION = "production"


class KilnSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KILN_", extra="ignore", frozen=True)

    env: Environment = Environment.DEV
    instance_id: str = Field(default_factory=_default_instance_id)
    log_level: str = "INFO"
    nats_url: str = "nats://127.0.0.1:4222"
    nats_connect_timeout_seconds: float = Field(default=5, gt=0)
    # 3 on a three-node JetStream cluster (infra/k8s); 1 on a single server.
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)


split_urls = _split_urls
