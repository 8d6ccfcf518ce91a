from __future__ import annotations

from kiln_gateway.sessions import CODE_ALPHABET, normalise_code


def test_codes_are_forgiving_about_case_and_separators() -> None:
    assert normalise_code("ab-c 2x7") == "ABC2X7"


def test_only_the_code_alphabet_survives() -> None:
    # Non-ASCII letters count as alphanumeric in Python, but can never be part of a code (and
    # must never reach a NATS KV key): found by schemathesis as a 500 on /api/sessions/join.
    assert normalise_code("ÅÄÖ𰥃ЖЯ") == ""
    assert set(normalise_code("any text at all, 1234 ÆØ")) <= set(CODE_ALPHABET)
