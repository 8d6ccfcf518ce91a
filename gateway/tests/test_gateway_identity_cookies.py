from __future__ import annotations

import uuid

from kiln_gateway.identity import DeviceCookies

NOW = 1_800_000_000.0


def cookies(secret: str = "s" * 32, rotation: float = 3600) -> DeviceCookies:
    return DeviceCookies(secret, rotation)


def test_a_missing_cookie_gives_a_new_random_device() -> None:
    first, second = cookies().resolve(None, NOW), cookies().resolve(None, NOW)
    assert first.changed
    assert first.device_id != second.device_id
    assert str(uuid.UUID(first.device_id)) == first.device_id
    assert first.session_id is None


def test_a_signed_cookie_round_trips_unchanged() -> None:
    jar = cookies()
    session = str(uuid.uuid4())
    issued = jar.new(session, NOW)
    resolved = jar.resolve(jar.encode(issued), NOW + 10)
    assert (resolved.device_id, resolved.session_id, resolved.issued_at) == (
        issued.device_id,
        session,
        issued.issued_at,
    )
    assert not resolved.changed


def test_tampered_or_foreign_cookies_are_replaced() -> None:
    jar = cookies()
    value = jar.encode(jar.new(now=NOW))
    device = value.split(".")[0]
    for forged in (
        value.replace(device, str(uuid.uuid4())),
        value[:-1] + ("0" if value[-1] != "0" else "1"),
        cookies(secret="another-secret-entirely-000").encode(jar.new(now=NOW)),
        "garbage",
        "a.b.c.d",
    ):
        resolved = jar.resolve(forged, NOW)
        assert resolved.changed
        assert resolved.device_id != device


def test_rotation_gives_a_new_device_and_keeps_the_session() -> None:
    jar = cookies(rotation=60)
    session = str(uuid.uuid4())
    issued = jar.new(session, NOW)
    rotated = jar.resolve(jar.encode(issued), NOW + 61)
    assert rotated.changed
    assert rotated.device_id != issued.device_id
    assert rotated.session_id == session


def test_joining_a_session_marks_the_cookie_for_sending() -> None:
    jar = cookies()
    identity = jar.resolve(jar.encode(jar.new(now=NOW)), NOW)
    joined = identity.with_session(str(uuid.uuid4()))
    assert joined.changed
    assert joined.device_id == identity.device_id


def test_a_cookie_with_non_ascii_characters_is_a_new_device_not_an_error() -> None:
    jar = cookies()
    value = jar.encode(jar.new(now=NOW))
    device = value.split(".")[0]
    # A signed payload whose issued-at is a non-ASCII digit must not reach int().
    signed_superscript = f"{device}.-.²"
    for garbled in (
        value[:-1] + "é",
        "é" + value,
        value.replace(".", "\u00b7", 1),
        f"{signed_superscript}.{jar._sign(signed_superscript)}",
    ):
        resolved = jar.resolve(garbled, NOW)
        assert resolved.changed
        assert resolved.device_id != device
