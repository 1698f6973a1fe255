"""Regenerate the Python code for protos/lockerhub/v1 (`make proto` and the staleness test)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = Path("lockerhub") / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_files() -> list[Path]:
    """The .proto sources, relative to the proto root, in a stable order."""
    return sorted(p.relative_to(PROTO_ROOT) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))


def generate(out_root: Path) -> list[Path]:
    """Run protoc (grpcio-tools + mypy-protobuf plugins) writing into out_root; return the files."""
    from grpc_tools import protoc

    out_root.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    # mypy-protobuf's plugins live next to the interpreter in the virtualenv.
    env_path = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["PATH"] = env_path
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *(str(p) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted(
        p for p in (out_root / PACKAGE_DIR).iterdir() if p.name.endswith(GENERATED_SUFFIXES)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=PROTO_ROOT)
    generate(parser.parse_args().out)


if __name__ == "__main__":
    main()
