"""Processes under measurement: start pinned, wait until ready, read CPU time, memory and descriptors."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def family(pid: int) -> list[int]:
    """A process and all its descendants (a supervisor and its workers)."""
    out = [pid]
    for child_list in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in child_list.read_text().split():
            out += family(int(child))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process and its descendants, from /proc."""
    total = 0.0
    for p in family(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def status_kb(pid: int, key: str) -> int:
    """A /proc/<pid>/status value in kB (VmRSS, VmHWM), summed over descendants."""
    total = 0
    for p in family(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


def connections_to(pid: int, ports: set[int]) -> int:
    """TCP connections of the process (and its children) whose remote port is one of `ports`."""
    inodes = set()
    for p in family(pid):
        with contextlib.suppress(FileNotFoundError):
            for fd in os.listdir(f"/proc/{p}/fd"):
                with contextlib.suppress(FileNotFoundError):
                    link = os.readlink(f"/proc/{p}/fd/{fd}")
                    if link.startswith("socket:["):
                        inodes.add(link[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[9] in inodes and int(fields[2].rsplit(":", 1)[1], 16) in ports:
                    count += 1
    return count


def open_fds(pid: int) -> int:
    return sum(len(os.listdir(f"/proc/{p}/fd")) for p in family(pid) if Path(f"/proc/{p}/fd").exists())


@dataclass
class Proc:
    name: str
    argv: list[str]
    cores: str
    env: dict[str, str] = field(default_factory=dict)
    log: Path | None = None
    popen: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    def start(self) -> Proc:
        out = self.log.open("wb") if self.log else subprocess.DEVNULL
        self.started_at = time.perf_counter()
        self.popen = subprocess.Popen(["taskset", "-c", self.cores, *self.argv], env={**os.environ, **self.env},
                                      stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def wait_ready(self, url: str, timeout_s: float = 120.0) -> float:
        """Seconds from start until `url` answers 200 (polled every 10 ms, bounded)."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 (loopback only)
                    if r.status == 200:
                        return time.perf_counter() - self.started_at
            except OSError:
                pass
            time.sleep(0.01)
        raise TimeoutError(f"{self.name} not ready after {timeout_s} s")

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
