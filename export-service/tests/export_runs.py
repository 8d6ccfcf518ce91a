"""Run folders for export tests, made the way media-service makes them (kiln_storage.local),
and the job runner on a real export volume."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from kiln_contracts.ids import new_run_id
from kiln_contracts.records import (
    BlockInfo,
    Entity,
    RunRecord,
    RunRequest,
    RunStatus,
)
from kiln_export.config import ExportSettings
from kiln_export.jobs import ARCHIVES_DIR, ExportJobs, JobStore
from kiln_export.ports import Publish
from kiln_export.targets import VolumeTarget
from kiln_storage.local import RunStore


def volume_jobs(settings: ExportSettings, publish: Publish) -> ExportJobs:
    """The job runner with archives on the export volume (no S3 target)."""
    return ExportJobs(
        settings,
        JobStore(settings.export_root),
        VolumeTarget(settings.export_root / ARCHIVES_DIR),
        None,
        publish,
    )


def make_run(
    store: RunStore,
    *,
    status: RunStatus = RunStatus.COMPLETED,
    workflow: str = "noise",
    input_text: str = "a red kite",
    device_id: str | None = "device-a",
    session_id: str | None = "session-1",
    outputs: int = 1,
    output_size: int = 2048,
    block_first_output: bool = False,
) -> RunRecord:
    run_id = new_run_id()
    store.create_run(
        run_id,
        RunRequest(
            workflow=workflow,
            input_text=input_text,
            params={"width": 64, "seed": 7},
            device_id=device_id,
            session_id=session_id,
        ),
    )
    store.add_bytes(
        run_id, b'{"3": {"class_type": "SaveImage"}}', "workflow", "json", "application/json", {}
    )
    for _ in range(outputs):
        store.add_bytes(
            run_id, os.urandom(output_size), "output_image", "png", "image/png", {"width": 64}
        )

    def finish(record: RunRecord) -> RunRecord:
        entities = list(record.entities)
        if block_first_output:
            first = next(i for i, e in enumerate(entities) if e.type.startswith("output"))
            entities[first] = entities[first].model_copy(
                update={"blocked": BlockInfo(reason="a face", at=datetime.now(UTC))}
            )
        return record.model_copy(update={"status": status, "entities": entities})

    return store.update(run_id, finish)


def output_entities(record: RunRecord) -> list[Entity]:
    return [e for e in record.entities if e.type.startswith("output")]
