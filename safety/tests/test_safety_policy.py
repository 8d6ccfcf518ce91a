"""The policy file: the shipped one loads for every level; a bad one stops the start clearly."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from kiln_contracts.records import SafetyLevel
from kiln_safety.policy import PolicyError
from kiln_safety.screen import Screen, build_screen
from kiln_safety.verdicts import CheckPoint, CheckResult, Verdict


def test_the_shipped_policy_covers_every_level() -> None:
    screen = build_screen(None)
    assert set(screen.policy.levels) == set(SafetyLevel)
    assert [c.name for c in screen.checks_for(SafetyLevel.KIDS, CheckPoint.INPUT)] == [
        "terms",
        "personal_data",
    ]


def test_old_level_names_stay_readable() -> None:
    assert SafetyLevel("strict") is SafetyLevel.KIDS
    assert SafetyLevel("standard") is SafetyLevel.YOUTH


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("not json", "is invalid"),
        ({"version": "1", "levels": {"kids": {"input": [{"check": "nope"}]}}}, "is invalid"),
        ({"version": "1", "levels": {"kids": {}}}, "no entry for level"),
        (
            {
                "version": "1",
                "levels": {
                    level.value: {"input": [{"check": "terms", "categories": ["cats"]}]}
                    for level in SafetyLevel
                },
            },
            "no term list: cats",
        ),
        ({"version": "1", "levels": {"kids": {"output": []}}}, "is invalid"),
    ],
)
def test_a_bad_policy_fails_with_a_clear_message(
    tmp_path: Path, policy: object, message: str
) -> None:
    text = policy if isinstance(policy, str) else json.dumps(policy)
    (tmp_path / "default.json").write_text(text)
    with pytest.raises(PolicyError, match=message):
        build_screen(tmp_path)


def test_a_missing_policy_file_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot be read"):
        build_screen(tmp_path)


def test_an_operator_directory_adds_terms(tmp_path: Path) -> None:
    (tmp_path / "terms").mkdir()
    (tmp_path / "terms" / "custom.en.json").write_text(
        json.dumps({"category": "custom", "language": "en", "terms": ["glorp"]})
    )
    policy = {
        "version": "local-1",
        "levels": {
            level.value: {"input": [{"check": "terms", "categories": ["custom"]}]}
            for level in SafetyLevel
        },
    }
    (tmp_path / "default.json").write_text(json.dumps(policy))
    screen = build_screen(tmp_path)
    decision = asyncio.run(screen.screen_text(SafetyLevel.ADULT, CheckPoint.INPUT, "a glorp"))
    assert decision.verdict is Verdict.BLOCKED
    assert decision.policy_version == "local-1"


class Slow:
    name = "slow"

    async def check_text(self, text: str) -> CheckResult:
        await asyncio.Event().wait()  # never answers
        raise AssertionError


def test_a_check_past_its_timeout_is_unavailable_never_allowed() -> None:
    base = build_screen(None)
    screen = Screen(base.policy, {(SafetyLevel.KIDS, CheckPoint.INPUT): [Slow()]}, 0.05)
    decision = asyncio.run(screen.screen_text(SafetyLevel.KIDS, CheckPoint.INPUT, "a kite"))
    assert decision.verdict is Verdict.UNAVAILABLE
    assert decision.results[0].verdict is Verdict.UNAVAILABLE
