from __future__ import annotations

import pytest
from kiln_contracts.events import RunStarted, RunTextStage, TextStageOutput
from kiln_media.service import MediaService
from kiln_storage.local import RunStore

pytestmark = pytest.mark.anyio

TRANSLATION = TextStageOutput(stage="translation", index=0, model="m", text="A RED KITE")
RESTYLE = TextStageOutput(stage="restyle", index=1, model="m", text="a kite, red, in verse")


def started(run_id: str) -> RunStarted:
    return RunStarted(
        run_id=run_id,
        backend="comfyui-0",
        backend_url="http://b",
        graph={"1": {}},
        text_stages=[TRANSLATION, RESTYLE],
    )


async def test_a_text_stage_is_stored_once_as_its_own_entity(
    service: MediaService, store: RunStore, run_id: str
) -> None:
    event = RunTextStage(run_id=run_id, output=TRANSLATION)
    await service.on_text_stage(event)
    await service.on_text_stage(event)  # a redelivery
    await service.on_started(started(run_id))  # repeats both stages

    record = await service.get_run(run_id)
    names = [e.filename for e in record.entities]
    assert names == ["01_input.txt", "02_translation.txt", "03_restyle.txt", "04_workflow.json"]
    assert record.entities[1].meta == {"stage_index": 0, "model": "m"}
    assert record.entities[1].mime == "text/plain; charset=utf-8"
    run_dir = store.run_dir(run_id)
    assert (run_dir / "02_translation.txt").read_text() == "A RED KITE"
    assert (run_dir / "03_restyle.txt").read_text() == "a kite, red, in verse"


async def test_stages_announced_only_by_started_still_come_before_the_graph(
    service: MediaService, run_id: str
) -> None:
    await service.on_started(started(run_id))
    await service.on_text_stage(RunTextStage(run_id=run_id, output=RESTYLE))  # late

    record = await service.get_run(run_id)
    assert [e.filename for e in record.entities] == [
        "01_input.txt",
        "02_translation.txt",
        "03_restyle.txt",
        "04_workflow.json",
    ]
