from __future__ import annotations

from kiln_pipeline.outputs import collect_outputs, failure_of


def test_every_saved_file_of_every_kind_and_no_previews() -> None:
    entry = {
        "outputs": {
            "9": {
                "images": [{"filename": "9_00001_.png", "subfolder": "kiln/r", "type": "output"}]
            },
            "10": {"images": [{"filename": "p.png", "subfolder": "", "type": "temp"}]},
            "11": {
                "images": [{"filename": "11_00001_.webp", "subfolder": "kiln/r", "type": "output"}],
                "animated": [True],
            },
            "12": {
                "audio": [{"filename": "12_00001_.flac", "subfolder": "kiln/r", "type": "output"}]
            },
            "13": {
                "images": [{"filename": "13_00001_.mp4", "subfolder": "kiln/r", "type": "output"}],
                "animated": [True],
            },
            "14": {"text": ["just a string, not a file"]},
        },
        "status": {"status_str": "success", "completed": True, "messages": []},
    }
    found = [(o.node_id, o.kind, o.filename) for o in collect_outputs(entry)]
    assert found == [
        ("11", "animation", "11_00001_.webp"),
        ("12", "audio", "12_00001_.flac"),
        ("13", "video", "13_00001_.mp4"),
        ("9", "images", "9_00001_.png"),
    ]
    assert failure_of(entry) is None


def test_execution_error_details_are_kept() -> None:
    entry = {
        "outputs": {},
        "status": {
            "status_str": "error",
            "completed": False,
            "messages": [
                ["execution_start", {"prompt_id": "p"}],
                [
                    "execution_error",
                    {"node_id": "2", "node_type": "ImageAddNoise", "exception_message": "boom"},
                ],
            ],
        },
    }
    failure = failure_of(entry)
    assert failure == {
        "kind": "execution_error",
        "node_id": "2",
        "node_type": "ImageAddNoise",
        "exception_message": "boom",
    }
