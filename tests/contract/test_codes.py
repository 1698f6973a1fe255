"""Pickup codes: random, 6-8 digits, only ever stored as salted hashes."""

from __future__ import annotations

import hashlib

import pytest

from lockerhub.codes import generate_code, hash_code, verify_code
from lockerhub.errors import ContractError


def test_codes_have_the_asked_length_and_vary() -> None:
    codes = {generate_code(6) for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190
    assert len(generate_code(8)) == 8
    for bad in (5, 9):
        with pytest.raises(ContractError):
            generate_code(bad)


def test_hash_is_salted_and_verifies() -> None:
    h1, h2 = hash_code("123456", iterations=1000), hash_code("123456", iterations=1000)
    assert h1 != h2, "same code, same hash: no salt"
    assert "123456" not in h1
    assert verify_code("123456", h1)
    assert verify_code("123456", h2)
    assert not verify_code("123457", h1)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "garbage",
        "md5$1$00$00",
        "pbkdf2_sha256$x$00$00",
        "pbkdf2_sha256$0$00$00",
        "pbkdf2_sha256$1000$zz$00",
        "pbkdf2_sha256$99999999999$00$00",
    ],
)
def test_malformed_hashes_never_verify(encoded: str) -> None:
    assert not verify_code("123456", encoded)


def test_non_digit_codes_never_verify() -> None:
    h = hash_code("123456", iterations=1000)
    assert not verify_code("12345a", h)
    assert not verify_code("", h)


def test_code_lengths_at_and_past_the_bounds() -> None:
    assert len(generate_code()) == 6
    for digits in (6, 7, 8):
        assert len(generate_code(digits)) == digits
    for digits in (5, 9):
        with pytest.raises(ContractError, match=f"6-8 digits, not {digits}"):
            generate_code(digits)


def test_hash_format_defaults() -> None:
    scheme, iterations, salt_hex, digest_hex = hash_code("123456").split("$")
    assert (scheme, iterations) == ("pbkdf2_sha256", "5000")
    assert len(bytes.fromhex(salt_hex)) == 16
    assert len(bytes.fromhex(digest_hex)) == 32
    fixed = hash_code("123456", iterations=2, salt=b"\x01\x02")
    assert fixed == hash_code("123456", iterations=2, salt=b"\x01\x02")
    assert fixed.split("$")[2] == "0102"


@pytest.fixture
def cheap_pbkdf2(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for PBKDF2 so that the 10-million-iteration bound costs nothing to test."""

    def fake(name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
        return hashlib.sha256(b"%s|%s|%s|%d" % (name.encode(), password, salt, iterations)).digest()

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", fake)


@pytest.mark.parametrize(
    ("iterations", "accepted"),
    [(1, True), (10_000_000, True), (10_000_001, False)],
)
@pytest.mark.usefixtures("cheap_pbkdf2")
def test_iteration_count_bounds(iterations: int, accepted: bool) -> None:
    encoded = hash_code("123456", iterations=iterations, salt=b"salt")
    assert verify_code("123456", encoded) is accepted
    assert not verify_code("654321", encoded)
