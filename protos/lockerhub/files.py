"""Private files: data files (databases, notices) are created 0600 in a 0700 folder, whatever the
process umask, because they hold phone numbers and pickup codes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """Make folder ``path`` (and missing parents) 0700; an existing folder is left as it is (it may
    be a shared working directory)."""
    missing: list[Path] = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    for made in missing:  # mkdir's mode is masked by the umask
        os.chmod(made, DIR_MODE)


def private_file(path: Path) -> None:
    """Create ``path`` empty when missing (in a :func:`private_dir`), and make it 0600."""
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def open_private_append(path: Path) -> IO[str]:
    """``path`` opened for appending text, created 0600 (in a 0700 folder) when missing."""
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise
