"""Opaque page tokens of ListParcels."""

from __future__ import annotations

import base64
import binascii

from hub.errors import InvalidArgument


def encode_page_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"p:{seq}".encode()).decode()


def decode_page_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        if not text.startswith("p:"):
            raise ValueError(text)
        return int(text[2:])
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidArgument("page_token is not a token this hub issued") from None
