"""The ``terms`` check: listed words and phrases per language and category, matched on word
boundaries after normalisation (see normalize.py), with an allow-list for innocent words.

A term list file (``data/terms/<category>.<language>.json``, or the same under an operator's
directory) is ``{"category", "language", "terms": [...], "allow": [...]}``. A term ending in
``*`` also matches words that start with it (German compounds: ``hakenkreuz*``). A listed word
spelt with separators (``k.i.l.l``, ``k i l l``, ``hit-ler``) still matches: words joined only by
punctuation, or single letters joined by spaces, are read together."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

from kiln_safety.normalize import canonical_phrase, words
from kiln_safety.verdicts import CheckResult, Verdict

# Read together at most this many pieces of one spelt-out word ("k i l l e r" is 6).
_MAX_PIECES = 24


class TermFile(BaseModel):
    category: str = Field(pattern=r"^[a-z0-9_]+$")
    language: str = Field(pattern=r"^[a-z]{2}$")
    terms: list[str]
    allow: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Rule:
    rule_id: str  # category.language.hash: names the rule without repeating the word
    category: str


def _rule_id(category: str, language: str, term: str) -> str:
    digest = hashlib.sha256(term.encode()).hexdigest()[:8]
    return f"{category}.{language}.{digest}"


@dataclass
class TermIndex:
    """Every term of the loaded lists, indexed for matching in time linear in the input."""

    exact: dict[str, list[Rule]] = field(default_factory=dict)  # one word
    prefixes: dict[str, list[Rule]] = field(default_factory=dict)  # one word, ends in *
    phrases: dict[str, list[tuple[tuple[str, ...], Rule]]] = field(default_factory=dict)
    allowed_words: set[str] = field(default_factory=set)
    allowed_phrases: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    max_prefix: int = 0
    max_exact: int = 0
    size: int = 0
    _categories: set[str] = field(default_factory=set)

    def categories(self) -> frozenset[str]:
        return frozenset(self._categories)

    def add_file(self, terms: TermFile) -> None:
        self._categories.add(terms.category)
        for raw in terms.terms:
            prefix = raw.rstrip().endswith("*")
            phrase = canonical_phrase(raw.rstrip().rstrip("*"))
            if not phrase:
                raise ValueError(f"term list {terms.category}.{terms.language}: empty term {raw!r}")
            rule = Rule(_rule_id(terms.category, terms.language, raw), terms.category)
            self.size += 1
            if len(phrase) > 1:
                self.phrases.setdefault(phrase[0], []).append((phrase, rule))
            elif prefix:
                self.prefixes.setdefault(phrase[0], []).append(rule)
                self.max_prefix = max(self.max_prefix, len(phrase[0]))
            else:
                self.exact.setdefault(phrase[0], []).append(rule)
                self.max_exact = max(self.max_exact, len(phrase[0]))
        for raw in terms.allow:
            phrase = canonical_phrase(raw)
            if len(phrase) == 1:
                self.allowed_words.add(phrase[0])
            elif phrase:
                self.allowed_phrases.setdefault(phrase[0], []).append(phrase)

    def add_directory(self, directory: Path) -> None:
        for path in sorted(directory.glob("*.json")):
            try:
                self.add_file(TermFile.model_validate(json.loads(path.read_text("utf-8"))))
            except (ValueError, OSError) as exc:
                raise ValueError(f"term list {path}: {exc}") from exc


@dataclass(frozen=True)
class Hit:
    rule: Rule
    start: int  # word index
    end: int  # exclusive


def _joinable(pieces: list[str], spaced: list[bool], start: int, end: int) -> bool:
    """May words start..end-1 be read as one spelt-out word? Only if they are joined by
    punctuation alone, or are single letters (``k i l l``); otherwise ``is extra`` would read
    as ``isextra``."""
    if all(not spaced[i] for i in range(start + 1, end)):
        return True
    return all(len(pieces[i]) == 1 for i in range(start, end))


def find_hits(index: TermIndex, text: str) -> list[Hit]:
    found = words(text)
    pieces = [w.text for w in found]
    spaced = [w.spaced for w in found]
    hits: list[Hit] = []
    longest = max(index.max_exact, index.max_prefix)
    for start in range(len(pieces)):
        # One word, or several pieces read together as one.
        joined = ""
        for end in range(start + 1, min(len(pieces), start + _MAX_PIECES) + 1):
            if end - start > 1 and not _joinable(pieces, spaced, start, end):
                break
            joined += pieces[end - 1]
            if len(joined) > longest + 40:
                break
            for rule in index.exact.get(joined, ()):
                hits.append(Hit(rule, start, end))
            for cut in range(1, min(len(joined), index.max_prefix) + 1):
                for rule in index.prefixes.get(joined[:cut], ()):
                    hits.append(Hit(rule, start, end))
        for phrase, rule in index.phrases.get(pieces[start], ()):
            if tuple(pieces[start : start + len(phrase)]) == phrase:
                hits.append(Hit(rule, start, start + len(phrase)))
    if not hits:
        return hits
    covered = _allowed_spans(index, pieces)
    return [hit for hit in hits if not any(a <= hit.start and hit.end <= b for a, b in covered)]


def _allowed_spans(index: TermIndex, pieces: list[str]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for i, piece in enumerate(pieces):
        if piece in index.allowed_words:
            spans.append((i, i + 1))
        for phrase in index.allowed_phrases.get(piece, ()):
            if tuple(pieces[i : i + len(phrase)]) == phrase:
                spans.append((i, i + len(phrase)))
    return spans


class TermsCheck:
    """The term lists of some categories; blocks text with any listed term in it."""

    name = "terms"

    def __init__(self, index: TermIndex, categories: frozenset[str] | None = None) -> None:
        self.index = index
        self.categories = categories

    async def check_text(self, text: str) -> CheckResult:
        return self.check_now(text)

    def check_now(self, text: str) -> CheckResult:
        started = time.perf_counter()
        hits = [
            hit
            for hit in find_hits(self.index, text)
            if self.categories is None or hit.rule.category in self.categories
        ]
        rules = sorted({hit.rule.rule_id for hit in hits})
        categories = sorted({hit.rule.category for hit in hits})
        return CheckResult(
            check=self.name,
            verdict=Verdict.BLOCKED if hits else Verdict.ALLOWED,
            categories=categories,
            rules=rules,
            reason="listed term" if hits else "",
            duration_ms=(time.perf_counter() - started) * 1000,
        )
