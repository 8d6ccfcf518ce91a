"""Server-Sent Events frames, the same on every service."""

from __future__ import annotations

from kiln_common.sse import HEARTBEAT, sse_event, sse_retry


def test_sse_frames_carry_event_id_and_data() -> None:
    assert sse_event("state", '{"a":1}', 7) == b'event: state\nid: 7\ndata: {"a":1}\n\n'
    assert sse_event("progress", "x") == b"event: progress\ndata: x\n\n"


def test_multi_line_data_and_the_control_lines() -> None:
    assert sse_event("note", "a\nb") == b"event: note\ndata: a\ndata: b\n\n"
    assert sse_event("empty", "") == b"event: empty\ndata: \n\n"
    assert HEARTBEAT.startswith(b":")  # a comment: browsers ignore it
    assert sse_retry(2000) == b"retry: 2000\n\n"
