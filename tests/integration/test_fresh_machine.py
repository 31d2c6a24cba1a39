"""A machine without redis-server, prometheus or promtool: tests/services.py fetches them from Debian's
packages into its cache, says so, and what it fetched runs; the next look finds them in the cache."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import services
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("redis-server", "prometheus", "promtool")
FETCH_TIMEOUT_S = 600.0

def path_without_servers(scratch: Path) -> str:
    """The current PATH, each folder that holds one of SERVERS swapped for a folder of links to its other
    entries: apt-get, dpkg-deb, sh, tar and the rest stay reachable, the servers do not."""
    folders = []
    for i, folder in enumerate(os.environ["PATH"].split(os.pathsep)):
        if not any((Path(folder) / name).exists() for name in SERVERS):
            folders.append(folder)
            continue
        links = scratch / f"path-{i}"
        links.mkdir(parents=True)
        for entry in Path(folder).iterdir():
            if entry.name not in SERVERS:
                (links / entry.name).symlink_to(entry)
        folders.append(str(links))
    return os.pathsep.join(folders)


@pytest.fixture
def fresh_machine(tmp_path: Path) -> dict[str, str]:
    """The environment of a fresh Debian: no servers on the PATH, an empty cache folder, and apt with no
    package lists (a Debian image ships none) nor an installed redis or prometheus to offer."""
    apt = tmp_path / "apt"
    (apt / "lists" / "partial").mkdir(parents=True)
    (apt / "status").touch()
    (apt / "apt.conf").write_text(f'Dir::State::Lists "{apt / "lists"}";\nDir::State::status "{apt / "status"}";\n')
    env = {**os.environ, "PATH": path_without_servers(tmp_path / "bin"), "APT_CONFIG": str(apt / "apt.conf"),
           services.CACHE_ENV: str(tmp_path / "cache")}
    assert all(shutil.which(name, path=env["PATH"]) is None for name in SERVERS)
    return env


def find_servers(env: dict[str, str]) -> tuple[dict[str, Path], str]:
    """`python -m tests.services` in `env`: where each server is, and the notes it printed."""
    done = subprocess.run([sys.executable, "-m", "tests.services", *SERVERS], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    found = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    return {name: Path(found[name]) for name in SERVERS}, done.stderr


@pytest.mark.timeout(FETCH_TIMEOUT_S)
def test_a_machine_without_the_servers_fetches_them_and_they_run(fresh_machine: dict[str, str]) -> None:
    cache = Path(fresh_machine[services.CACHE_ENV])
    found, notes = find_servers(fresh_machine)

    assert found == {name: cache / "bin" / name for name in SERVERS}
    assert re.search(r"^refreshing Debian's package lists into .*/cache/apt/lists \(apt-get update\)", notes, re.M)
    fetches = [line for line in notes.splitlines() if line.startswith("fetching ")]
    assert len(fetches) == 2, notes   # one per fetch: prometheus and promtool come in one package
    assert re.match(rf"fetching redis-server \d+\.\d+\.\d+ with (\S+, )*libjemalloc2, liblzf1(, \S+)* from Debian's "
                    rf"packages into {re.escape(str(cache))}: needed by the shared-state", fetches[0]), fetches
    # prometheus depends on its web UI's script packages, which a machine may or may not hold already
    assert re.match(r"fetching prometheus \d+\.\d+\.\d+ \(prometheus, promtool\)( with (\S+, )*\S+)? from Debian's "
                    r"packages into ", fetches[1]), fetches
    versions = {name: subprocess.run([str(found[name]), "--version"], env=fresh_machine, capture_output=True,
                                     text=True, timeout=30) for name in SERVERS}
    assert versions["redis-server"].returncode == 0 and "Redis server v=" in versions["redis-server"].stdout
    assert versions["promtool"].returncode == 0 and "promtool, version" in versions["promtool"].stdout
    assert versions["prometheus"].returncode == 0 and "prometheus, version" in versions["prometheus"].stdout

    redis = RedisServer(binary=found["redis-server"]).start()
    try:
        assert redis.client().ping()
        assert redis.proc is not None   # the launcher exec'd: the pid is redis's, with the libraries it came with
        maps = Path(f"/proc/{redis.proc.pid}/maps").read_text()
        assert str(cache / "redis-server-") in maps and "libjemalloc.so.2" in maps
    finally:
        redis.stop()

    again, quiet = find_servers(fresh_machine)
    assert again == found and quiet == ""


def test_a_server_on_the_path_is_used_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "redis-server").write_text("#!/bin/sh\necho 'Redis server v=0.0.0'\n")
    (folder / "redis-server").chmod(0o755)
    notes: list[str] = []
    monkeypatch.setattr(services, "announce", notes.append)

    assert services.locate("redis-server", str(folder), tmp_path / "cache") == folder / "redis-server"
    assert notes == [] and not (tmp_path / "cache").exists()
