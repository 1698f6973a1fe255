"""Run `lockerhub` subcommands as real processes and read what they announce on stdout."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path


def lockerhub_exe() -> str:
    """The console script of this virtualenv."""
    exe = Path(sys.executable).parent / "lockerhub"
    assert exe.exists(), f"{exe} missing: install the project (`make test` does)"
    return str(exe)


class Proc:
    """A child process whose stdout and stderr are collected by threads (never blocking)."""

    def __init__(self, args: Sequence[str], *, env: dict[str, str] | None = None) -> None:
        self.args = list(args)
        self.popen = subprocess.Popen(
            [lockerhub_exe(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.popen.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._pump, args=(self.popen.stderr, self.stderr), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream: object, sink: list[str]) -> None:
        assert stream is not None
        for line in stream:  # type: ignore[attr-defined]
            sink.append(line)
        stream.close()  # type: ignore[attr-defined]

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Wait until a stdout line matches ``pattern``; fail with the output when it never does."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.stdout):
                if m := rx.search(line):
                    return m
            if self.popen.poll() is not None:
                time.sleep(0.2)  # let the pumps drain
                break
            time.sleep(0.05)
        raise AssertionError(
            f"`lockerhub {' '.join(self.args)}` never printed /{pattern}/ "
            f"(exit={self.popen.poll()}):\n--- stdout\n{''.join(self.stdout)[-3000:]}"
            f"\n--- stderr\n{''.join(self.stderr)[-3000:]}"
        )

    def terminate(self, timeout: float = 20.0, *, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` (SIGTERM), wait, return the exit code.

        A process that hangs has its stacks dumped (SIGUSR1, lockerhub.cli) into its output, is
        killed, and returns -SIGKILL: never raises, so that a ``finally`` stops every process.
        """
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.send_signal(signal.SIGUSR1)
                time.sleep(1)
                self.popen.kill()
                self.popen.wait()
                name = signal.Signals(sig).name
                self.stderr.append(f"\n[test] ignored {name} for {timeout:g} s: killed\n")
        for t in self._threads:
            t.join(5)
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL: a power cut as far as the process can tell."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()
        for t in self._threads:
            t.join(5)

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)
