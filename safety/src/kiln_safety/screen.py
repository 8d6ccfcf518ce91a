"""Running a level's checks at one check point, failing closed."""

from __future__ import annotations

import asyncio
import logging
import time
from importlib import resources
from pathlib import Path

from kiln_contracts.records import SafetyLevel
from pydantic import BaseModel, Field

from kiln_safety.personal_data import PersonalDataCheck
from kiln_safety.policy import (
    CheckSettings,
    PersonalDataSettings,
    SafetyPolicy,
    TermsSettings,
    load_policy,
)
from kiln_safety.terms import TermIndex, TermsCheck
from kiln_safety.verdicts import CheckPoint, CheckResult, TextCheck, Verdict

logger = logging.getLogger("kiln.safety")


class Decision(BaseModel):
    """The outcome at one check point: blocked if any check blocked, else unavailable if any
    check gave no answer, else allowed. Checks after a block do not run (nothing more needs to
    see the text)."""

    level: SafetyLevel
    point: CheckPoint
    verdict: Verdict
    policy_version: str
    results: list[CheckResult] = Field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def categories(self) -> list[str]:
        return sorted({c for r in self.results for c in r.categories})

    @property
    def rules(self) -> list[str]:
        return sorted({rule for r in self.results for rule in r.rules})


class Screen:
    def __init__(
        self,
        policy: SafetyPolicy,
        checks: dict[tuple[SafetyLevel, CheckPoint], list[TextCheck]],
        timeout_seconds: float = 5.0,
    ) -> None:
        self.policy = policy
        self.checks = checks
        self.timeout_seconds = timeout_seconds

    def checks_for(self, level: SafetyLevel, point: CheckPoint) -> list[TextCheck]:
        return self.checks.get((level, point), [])

    async def screen_text(self, level: SafetyLevel, point: CheckPoint, text: str) -> Decision:
        started = time.perf_counter()
        results: list[CheckResult] = []
        verdict = Verdict.ALLOWED
        for check in self.checks_for(level, point):
            result = await self._run(check, text)
            results.append(result)
            if result.verdict is Verdict.BLOCKED:
                verdict = Verdict.BLOCKED
                break
            if result.verdict is Verdict.UNAVAILABLE:
                verdict = Verdict.UNAVAILABLE
        return Decision(
            level=level,
            point=point,
            verdict=verdict,
            policy_version=self.policy.version,
            results=results,
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    async def _run(self, check: TextCheck, text: str) -> CheckResult:
        started = time.perf_counter()
        try:
            return await asyncio.wait_for(check.check_text(text), self.timeout_seconds)
        except Exception as exc:  # noqa: BLE001  any failure of a check is "no answer", never "allowed"
            logger.warning("safety check %s gave no answer: %r", check.name, exc)
            return CheckResult(
                check=check.name,
                verdict=Verdict.UNAVAILABLE,
                reason=f"{type(exc).__name__}",
                duration_ms=(time.perf_counter() - started) * 1000,
            )


def term_index(policy_dir: Path | None) -> TermIndex:
    index = TermIndex()
    shipped = resources.files("kiln_safety").joinpath("data", "terms")
    index.add_directory(Path(str(shipped)))
    if policy_dir is not None and (policy_dir / "terms").is_dir():
        index.add_directory(policy_dir / "terms")
    return index


def build_screen(policy_dir: Path | None, timeout_seconds: float = 5.0) -> Screen:
    """The screen the policy describes; raises PolicyError with a clear message if it cannot
    be built (call it at start-up)."""
    index = term_index(policy_dir)
    policy = load_policy(policy_dir, index.categories())
    personal = PersonalDataCheck()
    checks: dict[tuple[SafetyLevel, CheckPoint], list[TextCheck]] = {}

    def make(settings: CheckSettings) -> TextCheck:
        if isinstance(settings, TermsSettings):
            return TermsCheck(index, frozenset(settings.categories))
        assert isinstance(settings, PersonalDataSettings)
        return personal

    for level, rules in policy.levels.items():
        for point in CheckPoint:
            checks[(level, point)] = [make(s) for s in rules.checks_at(point)]
    return Screen(policy, checks, timeout_seconds)
