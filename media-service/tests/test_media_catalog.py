from __future__ import annotations

from kiln_contracts.api import RunPage
from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunRecord, RunRequest, RunStatus
from kiln_media.catalog import RunCatalog
from kiln_storage.index import RunFilter, RunIndex
from kiln_storage.local import RunStore


def test_a_page_is_a_run_page_of_the_stored_records(store: RunStore) -> None:
    catalog = RunCatalog(store, RunIndex(store), "media-test")
    ids = [new_run_id() for _ in range(3)]
    for run_id in ids:
        store.create_run(run_id, RunRequest(workflow="noise", input_text=run_id))
    page = RunPage.model_validate_json(catalog._page(RunFilter(), 2, None))
    assert [r.run_id for r in page.items] == [ids[2], ids[1]]
    assert page.items[0] == store.read(ids[2])
    rest = RunPage.model_validate_json(catalog._page(RunFilter(), 2, page.next_cursor))
    assert [r.run_id for r in rest.items] == [ids[0]]
    assert rest.next_cursor is None


def test_a_page_never_shows_a_run_that_no_longer_matches(store: RunStore) -> None:
    catalog = RunCatalog(store, RunIndex(store), "media-test")
    run_id = new_run_id()
    store.create_run(run_id, RunRequest(workflow="noise", input_text="x"))
    queued = RunFilter(status="queued")
    assert len(RunPage.model_validate_json(catalog._page(queued, 10, None)).items) == 1

    # Another replica (its own RunStore, no listener here) completes the run.
    def complete(record: RunRecord) -> RunRecord:
        return record.model_copy(update={"status": RunStatus.COMPLETED})

    RunStore(store.root).update(run_id, complete)
    assert RunPage.model_validate_json(catalog._page(queued, 10, None)).items == []
    done = RunPage.model_validate_json(catalog._page(RunFilter(status="completed"), 10, None))
    assert [r.run_id for r in done.items] == [run_id]
