# ruff: noqa: RUF001, RUF003  (homoglyphs are the point of these tests)
"""The terms check against a corpus of evasions (must be caught) and innocent prompts (must
pass), and the personal-data check."""

from __future__ import annotations

import pytest
from kiln_safety.personal_data import PersonalDataCheck
from kiln_safety.screen import term_index
from kiln_safety.terms import TermIndex, TermsCheck
from kiln_safety.verdicts import Verdict

INDEX = term_index(None)
ALL = TermsCheck(INDEX)

# Each must be blocked, and in the category given.
EVASIONS = [
    ("a dragon that kills the knight", "violence"),
    ("KILL", "violence"),
    ("k.i.l.l the monster", "violence"),
    ("k i l l the monster", "violence"),
    ("k-i-l-l", "violence"),
    ("k\u200bi\u200cl\u200dl the cat", "violence"),  # zero-width characters
    ("kіll", "violence"),  # Cyrillic і
    ("ＫＩＬＬ", "violence"),  # fullwidth
    ("k1ll", "violence"),
    ("Ein Ritter soll den Drachen töten", "violence"),
    ("toeten", "violence"),
    ("TÖTEN", "violence"),
    ("ein Hakenkreuz auf der Fahne", "hate"),
    ("hakenkreuzfahne", "hate"),
    ("H4k3nkr3uz", "hate"),
    ("H!tler", "hate"),
    ("hit-ler", "hate"),
    ("Sieg   Heil", "hate"),
    ("SS-Runen", "hate"),
    ("Hitlergruß", "hate"),
    ("hitlergruss", "hate"),
    ("s e x", "sexual"),
    ("$ex", "sexual"),
    ("p0rn0", "sexual"),
    ("nackte Frau", "sexual"),
    ("kokain", "drugs"),
    ("cocaine!!!", "drugs"),
    ("how to kill myself", "self_harm"),
    ("selbstmord", "self_harm"),
    ("Ｍｏｒｄ", "violence"),
    ("mörder", "violence"),
    ("moerder", "violence"),
]

# Each must pass every category.
INNOCENT = [
    "a killer whale jumping over the waves",
    "Ein Killerwal im Meer",
    "a red kite over the hills",
    "skills and skillful painting",
    "a heroine with a golden cape",
    "Sussex countryside in spring",
    "a bath bomb in the tub",
    "photo shoot of a cat",
    "a bamboo shoot in the rain",
    "blood orange juice",
    "Eine Waffel mit Sahne",
    "is extra cheese ok",
    "ein Geschenk für Oma",
    "a gift for grandma",
    "Mordor from the movie, but friendly",
    "Drogerie am Marktplatz",
    "leichte Wolken über dem See",
    "a therapist helping a kid",
    "5 kites and 3 balloons",
    "Scunthorpe United",
    "a cocktail of fruit",
    "Hitchcock style birds",
    "Eine Wasserpistole im Sommer",
    "",
    "🦄🌈✨",
    "\x01\x02 odd control chars \x7f",
]


@pytest.mark.parametrize(("text", "category"), EVASIONS)
def test_obfuscated_terms_are_blocked(text: str, category: str) -> None:
    result = ALL.check_now(text)
    assert result.verdict is Verdict.BLOCKED, text
    assert category in result.categories


@pytest.mark.parametrize("text", INNOCENT)
def test_innocent_prompts_pass(text: str) -> None:
    result = ALL.check_now(text)
    assert result.verdict is Verdict.ALLOWED, (text, result.rules)


def test_a_result_names_rule_ids_not_the_matched_words() -> None:
    result = ALL.check_now("kill")
    assert result.rules
    assert all(rule.startswith("violence.en.") for rule in result.rules)
    assert "kill" not in "".join(result.rules).replace("violence", "")


def test_categories_limit_what_a_check_blocks() -> None:
    hate_only = TermsCheck(INDEX, frozenset({"hate"}))
    assert hate_only.check_now("a sword and a gun").verdict is Verdict.ALLOWED
    assert hate_only.check_now("hakenkreuz").verdict is Verdict.BLOCKED


def test_very_long_and_mixed_script_input_is_handled() -> None:
    text = ("a calm lake " * 400)[:4000] + " ΚΙLL"  # Greek capitals + Latin
    assert ALL.check_now(text).verdict is Verdict.BLOCKED
    assert ALL.check_now("ж" * 5000).verdict is Verdict.ALLOWED


def test_an_operator_list_extends_terms_and_its_allow_list_wins(tmp_path: object) -> None:
    from kiln_safety.terms import TermFile

    index = TermIndex()
    index.add_file(TermFile(category="custom", language="en", terms=["glorp*"], allow=["glorpy"]))
    check = TermsCheck(index)
    assert check.check_now("a glorpish thing").verdict is Verdict.BLOCKED
    assert check.check_now("a glorpy thing").verdict is Verdict.ALLOWED


PERSONAL = [
    ("write to lena.schmidt@example.org", "email"),
    ("mail me: tom (at) example (dot) com", "email"),
    ("call 0171 2345678", "phone"),
    ("+49 30 1234567", "phone"),
    ("DE89 3704 0044 0532 0130 00", "iban"),
    ("Ich wohne in der Hauptstraße 12", "address"),
    ("we live at 221 Baker Street", "address"),
    ("Lena Schmidt aus der 4b", "person_name"),
    ("a picture of Max Mustermann", "person_name"),
    ("Anna Lena Schmidt", "person_name"),
]

NOT_PERSONAL = [
    "Anna rides a horse",
    "a dragon named Max",
    "5 kites and 3 balloons",
    "the year 2026",
    "DE89 3704 0044 0532 0130 01",  # wrong check digits: not an IBAN (and too short a phone)
    "a street with 12 houses",
]


@pytest.mark.parametrize(("text", "category"), PERSONAL)
def test_personal_data_is_found(text: str, category: str) -> None:
    result = PersonalDataCheck().check_now(text)
    assert result.verdict is Verdict.BLOCKED, text
    assert category in result.categories


@pytest.mark.parametrize("text", NOT_PERSONAL)
def test_no_personal_data_passes(text: str) -> None:
    result = PersonalDataCheck().check_now(text)
    assert "person_name" not in result.categories
    assert "email" not in result.categories
    assert "iban" not in result.categories
