"""Who used the CPU during a phase, from /proc (Linux): per process group and program name."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
KTHREADD = 2  # the parent of every kernel thread
OTHER = "other"  # the label of processes that are not part of the run


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    pgrp: int
    comm: str
    utime: int
    stime: int

    @property
    def ticks(self) -> int:
        return self.utime + self.stime

    @property
    def kernel_thread(self) -> bool:
        return self.pid == KTHREADD or self.ppid == KTHREADD


NO_PROC = Proc(-1, -1, -1, "", 0, 0)


def processes() -> dict[int, Proc]:
    found: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone since the listing
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        found[pid] = Proc(
            pid, int(fields[1]), int(fields[2]), comm, int(fields[11]), int(fields[12])
        )
    return found


MACHINE_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_ticks() -> dict[str, int]:
    """Jiffies of all cores since boot, per kind of time (guest time is inside user time)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return dict(zip(MACHINE_FIELDS, values, strict=False))


@dataclass(frozen=True, slots=True)
class CpuReport:
    wall_s: float
    by_label_s: dict[str, float]  # CPU seconds per label
    kernel_by_label_s: dict[str, float]  # of which in the kernel (system time)
    other_by_program_s: dict[str, float]  # the "other" label, per program name
    machine_busy_pct: float  # of all cores
    machine_split_pct: dict[str, float]  # user, system, softirq, steal, … (of all cores)

    def pct_of_core(self, label: str) -> float:
        return 100.0 * self.by_label_s.get(label, 0.0) / self.wall_s if self.wall_s else 0.0

    def unattributed_pct_of_core(self, cores: int) -> float:
        """Busy time, interrupts and steal aside, that no process alive at the end accounts
        for (processes that came and went within the phase). In % of one core."""
        attributed = 100.0 * sum(self.by_label_s.values()) / self.wall_s if self.wall_s else 0.0
        split = self.machine_split_pct
        not_ours = split.get("irq", 0.0) + split.get("softirq", 0.0) + split.get("steal", 0.0)
        return max((self.machine_busy_pct - not_ours) * cores - attributed, 0.0)

    def kernel_share_pct(self, label: str) -> float:
        total = self.by_label_s.get(label, 0.0)
        return 100.0 * self.kernel_by_label_s.get(label, 0.0) / total if total else 0.0


class CpuMeter:
    """CPU seconds per label between start() and stop(). A process that exits in between is
    missed: count such processes (the load generators) from their own rusage instead."""

    def __init__(self, label: Callable[[Proc], str]) -> None:
        self._label = label
        self._before: dict[int, Proc] = {}
        self._machine: dict[str, int] = {}
        self._began = 0.0

    def start(self) -> None:
        self._before = processes()
        self._machine = machine_ticks()
        self._began = time.perf_counter()

    def stop(self, exited_s: dict[str, float] | None = None) -> CpuReport:
        """`exited_s`: CPU seconds of processes of the phase that have exited, per label."""
        after = processes()
        machine = machine_ticks()
        wall = time.perf_counter() - self._began
        by_label: dict[str, float] = defaultdict(float)
        kernel: dict[str, float] = defaultdict(float)
        other: dict[str, float] = defaultdict(float)
        for pid, proc in after.items():
            before = self._before.get(pid)
            if before is None or before.comm != proc.comm:
                before = Proc(pid, proc.ppid, proc.pgrp, proc.comm, 0, 0)
            if proc.ticks <= before.ticks:
                continue
            label = self._label(proc)
            by_label[label] += (proc.ticks - before.ticks) * TICK_S
            kernel[label] += (proc.stime - before.stime) * TICK_S
            if label == OTHER:
                other[proc.comm] += (proc.ticks - before.ticks) * TICK_S
        for label, seconds in (exited_s or {}).items():
            by_label[label] += seconds
        delta = {k: v - self._machine.get(k, 0) for k, v in machine.items()}
        total = sum(delta.values())
        split = {k: 100.0 * v / total if total else 0.0 for k, v in delta.items()}
        busy = 100.0 - split.get("idle", 0.0) - split.get("iowait", 0.0)
        top = dict(sorted(other.items(), key=lambda kv: -kv[1])[:8])
        return CpuReport(wall, dict(by_label), dict(kernel), top, busy, split)


def peak_rss_mb(pgrp: int) -> dict[int, float]:
    """The peak resident memory (VmHWM) of each process of a process group, in MB."""
    peaks: dict[int, float] = {}
    for proc in processes().values():
        if proc.pgrp != pgrp:
            continue
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[proc.pid] = int(line.split()[1]) / 1024  # kB
    return peaks
