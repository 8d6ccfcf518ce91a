"""The ``personal_data`` check: nothing that identifies a person leaves kiln (GDPR).

E-mail addresses, phone numbers, IBANs (with their check digits), street addresses (German and
English forms) and full person names: a first name from the de/en lists followed by a
capitalised word (the surname rule). A first name alone passes: children name their dog
``Bello`` and their heroine ``Anna``. An NER or LLM adapter may replace the name rule later."""

from __future__ import annotations

import re
import time
import unicodedata
from importlib import resources

from kiln_safety.verdicts import CheckResult, Verdict

_EMAIL = re.compile(
    r"[\w.+-]+\s*(?:@|\(at\)|\[at\])\s*[\w-]+(?:\s*(?:\.|\(dot\)|\[dot\])\s*[\w-]+)+", re.I
)
# 7+ digits, optionally +country, with spaces, dashes, slashes, dots or parentheses between.
_PHONE = re.compile(r"(?<![\w])(?:\+|00)?\d(?:[\s./()-]{0,2}\d){6,14}(?![\w])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]){11,30}\b", re.I)
_STREET_DE = re.compile(
    r"\b[\wäöüß-]+(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer)\s+\d{1,4}\s?[a-z]?\b",
    re.I,
)
_STREET_EN = re.compile(
    r"\b\d{1,5}\s+(?:[A-Z][\w-]+\s+){1,3}(?:street|st\.|road|rd\.|avenue|ave\.|lane|drive|way|close|court)\b",
    re.I,
)
_NAME_PAIR = re.compile(r"\b([A-ZÄÖÜ][a-zäöüß]+)\s+([A-ZÄÖÜ][a-zäöüß]+(?:-[A-ZÄÖÜ][a-zäöüß]+)?)\b")


def _iban_valid(candidate: str) -> bool:
    compact = re.sub(r"\s", "", candidate).upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return int(digits) % 97 == 1


def _load_names(filename: str) -> frozenset[str]:
    text = resources.files("kiln_safety").joinpath("data", filename).read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


class PersonalDataCheck:
    name = "personal_data"

    def __init__(self, first_names: frozenset[str] | None = None) -> None:
        self.first_names = first_names or (
            _load_names("first_names.de.txt") | _load_names("first_names.en.txt")
        )

    async def check_text(self, text: str) -> CheckResult:
        return self.check_now(text)

    def check_now(self, text: str) -> CheckResult:
        started = time.perf_counter()
        text = unicodedata.normalize("NFKC", text)
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
        categories: list[str] = []
        if _EMAIL.search(text):
            categories.append("email")
        if any(_iban_valid(m.group(0)) for m in _IBAN.finditer(text)):
            categories.append("iban")
        elif _PHONE.search(text):
            categories.append("phone")
        if _STREET_DE.search(text) or _STREET_EN.search(text):
            categories.append("address")
        if self._has_full_name(text):
            categories.append("person_name")
        return CheckResult(
            check=self.name,
            verdict=Verdict.BLOCKED if categories else Verdict.ALLOWED,
            categories=categories,
            rules=[f"personal_data.{c}" for c in categories],
            reason="personal data" if categories else "",
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    def _has_full_name(self, text: str) -> bool:
        for match in _NAME_PAIR.finditer(text):
            if match.group(1) in self.first_names and match.group(2) not in self.first_names:
                return True
        # "Anna Lena Schmidt": two first names, then the surname.
        for match in re.finditer(
            r"\b([A-ZÄÖÜ][a-zäöüß]+)\s+([A-ZÄÖÜ][a-zäöüß]+)\s+([A-ZÄÖÜ][a-zäöüß]+)\b", text
        ):
            if match.group(1) in self.first_names and match.group(2) in self.first_names:
                return True
        return False
