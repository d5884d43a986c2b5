"""The subprocesses of a run (API, worker, load generators): started in their own process
group, logged to files, and always stopped, group and all."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: its own process group, and SIGTERM when the bench dies."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def cashback_command() -> list[str]:
    """The project's `cashback` entry point in the running virtualenv."""
    beside = Path(sys.executable).with_name("cashback")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("cashback")
    if found:
        return [found]
    raise RuntimeError("the `cashback` command is not installed: run `uv sync` first")


class Process:
    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path | None
    ) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads at this point)
            )
        self.pgid = self.popen.pid  # setsid(): the child leads its own group

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM to the whole group, SIGKILL after `timeout`; returns the exit code."""
        if self.running:
            self.signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.popen.wait(5)
        # Children that outlived their leader (uvicorn workers) go too.
        self.signal_group(signal.SIGKILL)
        return self.popen.returncode


class Processes:
    """Every process the bench started; `stop_all` is safe to call more than once."""

    def __init__(self) -> None:
        self._all: list[Process] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
    ) -> Process:
        proc = Process(name, argv, env, log, cwd)
        self._all.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self._all):
            proc.stop()
        self._all.clear()
