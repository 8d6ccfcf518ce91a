from datetime import UTC, datetime, timedelta

import pytest
from kiln_contracts.ids import (
    InvalidRunIdError,
    RunId,
    is_run_id,
    new_run_id,
    parse_run_id,
    run_created_at,
    run_date,
)
from pydantic import BaseModel


def test_minted_ids_are_lowercase_canonical_uuid7() -> None:
    run_id = new_run_id()
    assert parse_run_id(run_id) == run_id
    assert run_id == run_id.lower()
    assert run_id[14] == "7"


def test_minted_ids_sort_by_time_and_never_repeat() -> None:
    started = datetime.now(UTC)
    ids = [new_run_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    # A burst must not push the encoded instant ahead of the clock (it names the day folder).
    assert run_created_at(ids[-1]) <= datetime.now(UTC) + timedelta(milliseconds=5)
    assert run_created_at(ids[0]) >= started - timedelta(milliseconds=5)


def test_date_and_instant_come_from_the_id() -> None:
    before = datetime.now(UTC)
    run_id = new_run_id()
    created = run_created_at(run_id)
    assert before - timedelta(seconds=1) <= created <= datetime.now(UTC) + timedelta(seconds=1)
    assert run_date(run_id) == created.date()


def test_known_id_decodes_to_its_day() -> None:
    run_id = "01900000-0000-7000-8000-000000000000"
    assert run_created_at(run_id) == datetime.fromtimestamp(0x019000000000 / 1000, tz=UTC)
    assert run_date(run_id).isoformat() == "2024-06-10"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not-a-uuid",
        "01900000-0000-4000-8000-000000000000",  # version 4
        "01900000-0000-7000-c000-000000000000",  # wrong variant
        "01900000-0000-7000-8000-00000000000A",  # upper case
        "{01900000-0000-7000-8000-000000000000}",
        "0190000000007000800000000000000",
        "../../etc/passwd",
        "01900000-0000-7000-8000-000000000000\x00",
        "01900000-0000-7000-8000-000000000000/..",
    ],
)
def test_anything_else_is_refused(bad: str) -> None:
    assert not is_run_id(bad)
    with pytest.raises(InvalidRunIdError):
        parse_run_id(bad)


def test_pydantic_type_validates() -> None:
    class Model(BaseModel):
        run_id: RunId

    with pytest.raises(ValueError, match="UUIDv7"):
        Model(run_id="x")
    assert Model(run_id="01900000-0000-7000-8000-000000000000").run_id.startswith("0190")
