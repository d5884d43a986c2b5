"""Who used the CPU during a phase, from /proc (Linux): per process group and program name."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
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


def backend_database(pid: int) -> str | None:
    """The database of a PostgreSQL backend, from its title ("postgres: 15/main: user db
    host(port) state"); None for the server's own processes (checkpointer, walwriter, …)."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, UnicodeDecodeError):
        return None
    words = title.split(": ", 2)[-1].split()
    is_backend = len(words) >= 3 and (words[2].endswith(")") or words[2] == "[local]")
    return words[1] if is_backend else None


# Labels of the run's components, shared by every benchmark's CPU accounting.
LABEL_API = "api"
LABEL_WORKER = "worker"
LABEL_POSTGRES = "postgres"
LABEL_REDIS = "redis"
LABEL_LOADGEN = "load generator"
LABEL_DRIVER = "bench driver"
LABEL_KERNEL = "kernel threads"
# The service's cost of an order: what the target "CPU per credited order" sums.
SERVICE_LABELS = (LABEL_API, LABEL_WORKER, LABEL_POSTGRES)
INTERFERENCE_PCT = 10.0  # CPU of processes outside the run, in % of a core, worth a note


@dataclass
class Labeller:
    """Who a process is: a component of the run (by process group, as each is started in a
    group of its own), our PostgreSQL server's processes (the postmaster's children serving
    `database`, or the server itself), or OTHER."""

    database: str
    postmaster: int = -1  # unknown: any `postgres` process counts as ours
    groups: dict[int, str] = field(default_factory=dict)  # process group -> label
    driver: int = field(default_factory=os.getpid)

    def __call__(self, proc: Proc) -> str:
        if proc.pgrp in self.groups:
            return self.groups[proc.pgrp]
        if proc.pid == self.driver:
            return LABEL_DRIVER
        if proc.kernel_thread:
            return LABEL_KERNEL  # kworkers: I/O write-back, network soft interrupts, …
        if self.postmaster in (proc.pid, proc.ppid):
            database = backend_database(proc.pid)
            return LABEL_POSTGRES if database in (None, self.database) else OTHER
        if self.postmaster < 0 and proc.comm.startswith("postgres"):
            return LABEL_POSTGRES
        if proc.comm.startswith("redis"):
            return LABEL_REDIS
        return OTHER


def interference_note(phase: str, report: CpuReport) -> str | None:
    """A note when processes outside the run took a noticeable share of the CPU."""
    lost = report.unattributed_pct_of_core(os.cpu_count() or 1)
    share = report.pct_of_core(OTHER) + lost
    if share < INTERFERENCE_PCT:
        return None
    programs = ", ".join(f"{name} {sec:.1f} s" for name, sec in report.other_by_program_s.items())
    return (
        f"{phase}: processes outside the benchmark used {share:.0f}% of a core "
        f"({programs or 'short-lived ones'}; {lost:.0f}% not attributed to any process still "
        "running at the end); its figures are disturbed"
    )


def peak_rss_of(pgids: set[int]) -> float:
    """The largest peak RSS (VmHWM, MB) of one process of the groups; 0 when none is alive."""
    return max((mb for pgid in pgids for mb in peak_rss_mb(pgid).values()), default=0.0)
