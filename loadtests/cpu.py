"""Who limits a phase: the CPU time the server process and the generator spent on it.

A ratio to the bare endpoint means what it says only while the server, not the
generator, is the limit in both phases: a server near 100% busy in the bare phase is
measured at its ceiling; one well below it waited for the generator (or for Redis).
Reads `/proc/<pid>/stat` (Linux), so only a server on this machine can be watched.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuSample:
    server_user_s: float
    server_system_s: float
    generator_s: float

    def __sub__(self, other: CpuSample) -> CpuSample:
        return CpuSample(
            self.server_user_s - other.server_user_s,
            self.server_system_s - other.server_system_s,
            self.generator_s - other.generator_s,
        )

    def __add__(self, other: CpuSample) -> CpuSample:
        return CpuSample(
            self.server_user_s + other.server_user_s,
            self.server_system_s + other.server_system_s,
            self.generator_s + other.generator_s,
        )


NO_CPU = CpuSample(0.0, 0.0, 0.0)


def process_cpu_s(pid: int) -> tuple[float, float]:
    """(user, system) seconds the process has run, all its threads together."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError as exc:
        raise ValueError(f"no process {pid} to watch on this machine ({exc})") from None
    # fields after the command name, which may hold spaces: state is 3rd, utime 14th
    fields = stat.rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def sample(server_pid: int) -> CpuSample:
    user, system = process_cpu_s(server_pid)
    return CpuSample(user, system, time.process_time())


def per_request(spent: CpuSample, requests: int, elapsed_s: float) -> dict[str, float]:
    """Microseconds of CPU per completed request, and the server's busy share (cores:
    the worker's helper threads count too, so it may pass 1.0)."""
    if requests == 0 or elapsed_s <= 0:
        return {}
    server = spent.server_user_s + spent.server_system_s
    return {
        "server_cpu_us": round(server / requests * 1e6, 1),
        "server_user_us": round(spent.server_user_s / requests * 1e6, 1),
        "server_system_us": round(spent.server_system_s / requests * 1e6, 1),
        "server_busy": round(server / elapsed_s, 3),
        "generator_cpu_us": round(spent.generator_s / requests * 1e6, 1),
    }
