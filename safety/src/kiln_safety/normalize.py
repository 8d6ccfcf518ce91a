# ruff: noqa: RUF001, RUF002, RUF003  (homoglyphs are the point of this module)
"""Text as the term check sees it: one canonical spelling per word, so obfuscation does not help.

Case, diacritics and umlaut spellings (ä = ae = a), fullwidth and other compatibility forms
(NFKC), zero-width and control characters, common Cyrillic/Greek homoglyphs and leetspeak
digits/symbols inside words all map to plain ``a``–``z``. Terms are normalised the same way, so
both sides always agree."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# Letters that look like Latin ones (Cyrillic, Greek); applied after casefolding.
_HOMOGLYPHS = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "ɡ": "g", "һ": "h", "ӏ": "l", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k",
    "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ѵ": "v", "ɑ": "a",
}  # fmt: skip
# Inside a word (next to a letter) these stand for letters.
_LEET = {
    "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
    "@": "a", "$": "s", "!": "i", "|": "l", "€": "e", "£": "l", "+": "t",
}  # fmt: skip
# Symbols that are punctuation at the edge of a word, letters only inside it.
_PUNCTUATION_LEET = frozenset("!|+")
_UMLAUTS = {"ä": "a", "ö": "o", "ü": "u", "ß": "ss", "æ": "a", "œ": "o", "ø": "o"}
_DIGRAPHS = (("ae", "a"), ("oe", "o"), ("ue", "u"))


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold_letters(text: str) -> str:
    """Casefold, map homoglyphs and umlauts, drop diacritics and format characters."""
    text = unicodedata.normalize("NFKC", text).casefold()
    out: list[str] = []
    for char in text:
        char = _HOMOGLYPHS.get(char, char)
        char = _UMLAUTS.get(char, char)
        if unicodedata.category(char) in ("Cf", "Cc", "Co", "Cs", "Mn", "Me"):
            if char in "\n\t\r":
                out.append(" ")
            continue  # zero-width joiners, soft hyphens, bidi marks, stray combining marks
        out.append(char)
    return _strip_marks("".join(out))


def canonical_word(word: str) -> str:
    """A word's spelling for comparison: ``ae``/``oe``/``ue`` fold like the umlauts they spell."""
    for digraph, single in _DIGRAPHS:
        word = word.replace(digraph, single)
    return word


@dataclass(frozen=True)
class Word:
    text: str  # canonical spelling, a–z only
    spaced: bool  # whitespace came before it (not only punctuation)


def words(text: str) -> list[Word]:
    """The canonical words of ``text``. A leet symbol counts as a letter when a letter or another
    leet symbol of the same run is next to it (``h1tl3r``, ``$ex``); a run of digits alone stays
    a number and is dropped (``5 kites`` is not ``s kites``)."""
    folded = fold_letters(text)
    result: list[Word] = []
    current: list[str] = []
    has_letter = False
    spaced = True
    pending_space = True

    def flush() -> None:
        nonlocal current, has_letter
        while current and current[-1] in _PUNCTUATION_LEET:
            current.pop()  # "kite!" ends a sentence; "h!tler" keeps its i
        while current and current[0] in _PUNCTUATION_LEET:
            current.pop(0)
        if current and has_letter:
            word = "".join(_LEET.get(c, c) for c in current)
            word = "".join(c for c in word if "a" <= c <= "z")
            if word:
                result.append(Word(canonical_word(word), spaced))
        current = []
        has_letter = False

    for char in folded:
        if "a" <= char <= "z" or char.isalpha():
            if not current:
                spaced = pending_space
                pending_space = False
            current.append(char)
            has_letter = has_letter or "a" <= char <= "z"
        elif char in _LEET:
            if not current:
                spaced = pending_space
                pending_space = False
            current.append(char)
        else:
            flush()
            if char.isspace():
                pending_space = True
    flush()
    return result


def canonical_phrase(phrase: str) -> tuple[str, ...]:
    """A term or allow-list entry as the tuple of its canonical words."""
    return tuple(w.text for w in words(phrase))
