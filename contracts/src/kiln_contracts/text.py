"""Text from outside must be real Unicode: JSON may carry lone surrogates (``"\\ud800"``),
which Python accepts as a str but which cannot be written as UTF-8 (to a file, a NATS key,
a log). Refused at validation, so they are a 422, never a 500 half-way through a request."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def _utf8_encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it contains a lone surrogate)") from None
    return value


Utf8Str = Annotated[str, AfterValidator(_utf8_encodable)]
