"""The committed lockerhub.v1 code is exactly what `make proto` generates from protos/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def generated(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in directory.iterdir() if p.name.endswith(SUFFIXES)}


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    # protoc runs in a process of its own: grpc_tools bundles a C++ protobuf runtime that
    # corrupts the heap of a process that also loads OR-Tools (which bundles another one).
    subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = generated(tmp_path / "lockerhub" / "v1")
    committed = generated(ROOT / "protos" / "lockerhub" / "v1")
    assert fresh, "protoc generated nothing"
    stale = sorted(n for n in fresh.keys() | committed.keys() if fresh.get(n) != committed.get(n))
    assert not stale, f"generated code is stale, run `make proto`: {stale}"
