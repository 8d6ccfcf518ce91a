"""The safety policy: for each level, which checks run at which check point, with what settings.

The shipped policy is ``data/default.json`` (versioned with the code); ``KILN_SAFETY_POLICY_DIR``
names a directory whose ``default.json`` replaces it and whose ``terms/*.json`` extend the term
lists. ``load_policy`` fails with a clear message when the file is invalid or names a check, a
category or a point that does not exist, so a bad policy stops the start, never a run."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Literal

from kiln_contracts.records import SafetyLevel
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kiln_safety.verdicts import CheckPoint


class TermsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    check: Literal["terms"]
    categories: list[str] = Field(min_length=1)


class PersonalDataSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    check: Literal["personal_data"]


CheckSettings = TermsSettings | PersonalDataSettings


class LevelPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: list[CheckSettings] = Field(default_factory=list)
    text_stage: list[CheckSettings] = Field(default_factory=list)

    def checks_at(self, point: CheckPoint) -> list[CheckSettings]:
        return list(getattr(self, point.value))


class SafetyPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1)
    levels: dict[SafetyLevel, LevelPolicy]


class PolicyError(Exception):
    """The policy cannot be used; the message says why and where."""


def _read(directory: Path | None) -> tuple[str, str]:
    if directory is None:
        source = resources.files("kiln_safety").joinpath("data", "default.json")
        return "kiln_safety/data/default.json", source.read_text("utf-8")
    path = directory / "default.json"
    try:
        return str(path), path.read_text("utf-8")
    except OSError as exc:
        raise PolicyError(f"safety policy {path}: cannot be read ({exc})") from exc


def load_policy(directory: Path | None, known_categories: frozenset[str]) -> SafetyPolicy:
    where, text = _read(directory)
    try:
        policy = SafetyPolicy.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise PolicyError(f"safety policy {where} is invalid: {exc}") from exc
    missing = [level.value for level in SafetyLevel if level not in policy.levels]
    if missing:
        raise PolicyError(f"safety policy {where} has no entry for level(s) {', '.join(missing)}")
    for level, rules in policy.levels.items():
        for point in CheckPoint:
            for settings in rules.checks_at(point):
                if isinstance(settings, TermsSettings):
                    unknown = sorted(set(settings.categories) - known_categories)
                    if unknown:
                        raise PolicyError(
                            f"safety policy {where}: level {level.value} {point.value} names "
                            f"term categories with no term list: {', '.join(unknown)}"
                        )
    return policy
