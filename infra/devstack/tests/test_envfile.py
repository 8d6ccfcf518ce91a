"""kiln.env: the settings a school writes once; what is wrong in it stops ``make dev``, named."""

from __future__ import annotations

from pathlib import Path

import pytest
from kiln_devstack.envfile import KNOWN_SETTINGS, EnvFileError, load_env_file, parse_env_file

EXAMPLE = Path(__file__).resolve().parents[3] / "kiln.env.example"


def test_names_values_comments_quotes_and_export() -> None:
    text = """
# the school's GPU box
KILN_COMFYUI_URLS=http://10.0.0.5:8188,http://10.0.0.6:8188
export KILN_GATEWAY_HOST=0.0.0.0   # every address
KILN_RESEARCHER_TOKEN="a token # with a hash"
KILN_LLM_URL='http://127.0.0.1:11434'
"""
    assert parse_env_file(text) == {
        "KILN_COMFYUI_URLS": "http://10.0.0.5:8188,http://10.0.0.6:8188",
        "KILN_GATEWAY_HOST": "0.0.0.0",
        "KILN_RESEARCHER_TOKEN": "a token # with a hash",
        "KILN_LLM_URL": "http://127.0.0.1:11434",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("KILN_COMFY_URLS=http://x:8188", "line 1: KILN_COMFY_URLS is not a setting"),
        ("\nKILN_GATEWAY_HOST", "line 2: expected NAME=value"),
        ("kiln_gateway_host=0.0.0.0", "expected NAME=value"),
        ("KILN_LLM_URL=", "KILN_LLM_URL has no value"),
        (
            "KILN_GATEWAY_PORT=8080\nKILN_GATEWAY_PORT=9090",
            "line 2: KILN_GATEWAY_PORT is set twice",
        ),
    ],
    ids=["misspelt", "no-equals", "lower-case", "empty", "twice"],
)
def test_a_line_that_would_do_nothing_or_guess_is_an_error(text: str, message: str) -> None:
    with pytest.raises(EnvFileError, match=message):
        parse_env_file(text, "kiln.env")


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "kiln.env"
    path.write_text("KILN_GATEWAY_HOST=0.0.0.0\nKILN_GATEWAY_PORT=9000\n")
    environ = {"KILN_GATEWAY_HOST": "127.0.0.1"}
    applied = load_env_file(path, environ)
    assert applied == {"KILN_GATEWAY_PORT": "9000"}
    assert environ == {"KILN_GATEWAY_HOST": "127.0.0.1", "KILN_GATEWAY_PORT": "9000"}


def test_a_missing_file_applies_nothing(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    assert load_env_file(tmp_path / "kiln.env", environ) == {}
    assert environ == {}


def test_the_committed_example_documents_every_setting_and_sets_none() -> None:
    text = EXAMPLE.read_text()
    assert parse_env_file(text) == {}, "the example is all comments: copying it changes nothing"
    uncommented = parse_env_file(
        "\n".join(
            line.removeprefix("# ") for line in text.splitlines() if line.startswith("# KILN_")
        )
    )
    assert set(uncommented) == set(KNOWN_SETTINGS)
