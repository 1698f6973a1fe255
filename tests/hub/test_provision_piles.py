"""``lockerhub devices ... add-pile``: a pile password printed once, stored as a salted hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.broker.provision import main
from hub.ocpp.credentials import PILES_FILE, PileCredentials, basic_header


async def test_add_pile_prints_a_password_that_only_its_hash_remembers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["devices", "--broker-dir", str(tmp_path), "add-pile", "pile-1", "--site", "s1"]) == 0
    )
    secret = next(
        line.split(": ", 1)[1]
        for line in capsys.readouterr().out.splitlines()
        if "password" in line
    )
    path = tmp_path / PILES_FILE
    assert secret not in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    book = PileCredentials.load(path)
    assert await book.check("s1", "pile-1", basic_header("pile-1", secret))
    assert not await book.check("s2", "pile-1", basic_header("pile-1", secret))
    assert not await book.check("s1", "pile-1", basic_header("pile-1", secret + "x"))
    # Again without --rotate: refused; with it: a new password, the old one dead.
    assert (
        main(["devices", "--broker-dir", str(tmp_path), "add-pile", "pile-1", "--site", "s1"]) == 2
    )
    args = ["devices", "--broker-dir", str(tmp_path), "add-pile", "pile-1", "--site", "s1"]
    assert main([*args, "--rotate"]) == 0
    assert not await PileCredentials.load(path).check(
        "s1", "pile-1", basic_header("pile-1", secret)
    )
    assert main(["devices", "--broker-dir", str(tmp_path), "remove-pile", "pile-1"]) == 0
    assert PileCredentials.load(path).piles == {}
