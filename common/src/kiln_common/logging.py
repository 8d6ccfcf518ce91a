"""Structured JSON logs. Every line about a run carries ``run_id`` (from a context variable),
so a run can be followed across services with one grep."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

current_run_id: ContextVar[str | None] = ContextVar("current_run_id", default=None)
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str, instance_id: str) -> None:
        super().__init__()
        self.service = service
        self.instance_id = instance_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.instance_id = self.instance_id
        if getattr(record, "run_id", None) is None:
            record.run_id = current_run_id.get()
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id.get()
        return True


def configure_logging(service: str, instance_id: str, level: str = "INFO") -> None:
    """Route everything (uvicorn included) through one JSON handler on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_ContextFilter(service, instance_id))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "nats"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Access lines would repeat what the request middleware logs with more context.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


@contextlib.contextmanager
def run_context(run_id: str | None) -> Iterator[None]:
    """Tag every log line in this block (and tasks started from it) with ``run_id``."""
    token = current_run_id.set(run_id)
    try:
        yield
    finally:
        current_run_id.reset(token)
