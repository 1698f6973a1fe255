"""The committed lockerhub.v1 code is exactly what `make proto` generates from protos/."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "protos_generate", ROOT / "protos" / "generate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["protos_generate"] = module
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    gen = _load_generator()
    fresh = {p.name: p.read_text() for p in gen.generate(tmp_path)}
    committed_dir = ROOT / "protos" / "lockerhub" / "v1"
    committed = {
        p.name: p.read_text()
        for p in committed_dir.iterdir()
        if p.name.endswith(gen.GENERATED_SUFFIXES)
    }
    assert fresh, "protoc generated nothing"
    stale = sorted(n for n in fresh.keys() | committed.keys() if fresh.get(n) != committed.get(n))
    assert not stale, f"generated code is stale, run `make proto`: {stale}"
