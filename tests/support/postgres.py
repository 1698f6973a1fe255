"""A throw-away PostgreSQL cluster for tests and benchmarks: initdb in a temporary directory,
pg_ctl start on a free port with its unix socket beside the data, removed at the end.

Like the mosquitto fixture, a missing binary fails the test (never skips) with a clear message;
`make test` apt-get installs the ``postgresql`` package when it is missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg


def find_pg_bin() -> Path:
    """The folder with initdb and pg_ctl (PATH first, then Debian's versioned folders)."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if candidates:
        return Path(candidates[-1]).parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) are not installed: run `make test` "
        "(it apt-get installs them) or `apt-get install postgresql`"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running cluster; ``create_database()`` gives each user a database of its own."""

    data_dir: Path
    socket_dir: Path
    port: int
    bin_dir: Path
    run_as: list[str]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url(name)

    def database_size(self, url: str) -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(b"SELECT pg_database_size(current_database())").fetchone()
        assert row is not None
        return int(row[0])

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: clients cut off, then up again on the same socket. With
        ``-l`` the new server writes to its log file, not to pg_ctl's (captured) stdout, which
        would otherwise stay open until the server ends."""
        self._ctl("restart", "-m", "fast", "-l", str(self.data_dir.parent / "server.log"))

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("stop", "-m", "fast")

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", *args],
            check=True,
            capture_output=True,
            timeout=120,
        )


def start_postgres(*, durable: bool = False) -> PostgresServer:
    """initdb + pg_ctl start. As root the server runs as the ``postgres`` user (PostgreSQL
    refuses root). ``durable=False`` turns fsync off: tests want speed, not crash safety."""
    bin_dir = find_pg_bin()
    base = Path(tempfile.mkdtemp(prefix="lockerhub-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError(
                "running as root needs a `postgres` user for the test cluster "
                "(the postgresql package creates it)"
            ) from None
        os.chown(base, account.pw_uid, account.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, sock = base / "data", base / "sock"
    for d in (data, sock):
        d.mkdir()
        if run_as:
            os.chown(d, pwd.getpwnam("postgres").pw_uid, pwd.getpwnam("postgres").pw_gid)
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = _free_port()
    options = [
        "-c listen_addresses=''",
        f"-c unix_socket_directories={sock}",
        "-c max_connections=100",
        "-c shared_buffers=128MB",
    ]
    if not durable:
        options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    server = PostgresServer(data, sock, port, bin_dir, run_as)
    try:
        server._ctl(
            "start", "-l", str(base / "server.log"), "-o", f"-p {port} " + " ".join(options)
        )
    except subprocess.CalledProcessError as exc:
        log = (
            (base / "server.log").read_text(errors="replace")[-2000:]
            if (base / "server.log").exists()
            else ""
        )
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr!r} {log}") from exc
    return server


@contextlib.contextmanager
def running_postgres(*, durable: bool = False) -> Iterator[PostgresServer]:
    server = start_postgres(durable=durable)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.data_dir.parent, ignore_errors=True)
