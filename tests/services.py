"""The real servers the suite starts (`redis-server`, `prometheus`, `promtool`): found, or fetched.

`find(name)` looks on the PATH first, then in a cache folder
(`$RECLOSER_TEST_SERVICES_CACHE`, else `~/.cache/recloser-test-services`), and else fetches Debian's
package with `apt-get download` and unpacks it there with `dpkg-deb -x`: nothing is installed on the
machine, no root is needed, and it works the same whether the packages are installed or not.
Each fetch says so in one line. A fetched binary is run through a small launcher in the cache's
`bin/`, which puts the libraries that came with it (libjemalloc2 and liblzf1 for Redis, and any
library the machine lacks) on LD_LIBRARY_PATH, so callers only need the path `find` returns.

When the machine's package lists do not know a package (a fresh Debian image ships none) or are too
old to download it, the lists are refreshed into the cache (`apt-get update` with a private
Dir::State::Lists, used for a day), never the machine's own.

Chromium (the console's browser tests) is the exception: it needs too many of the machine's libraries
to run from an unpacked tree, so where it is missing it is installed with `apt-get install` (as root).

    python -m tests.services [redis-server] [prometheus] [promtool] [chromium]   # find or fetch; print the paths
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "RECLOSER_TEST_SERVICES_CACHE"
APT_TIMEOUT_S = 300.0
RUN_TIMEOUT_S = 30.0
LISTS_FRESH_S = 24 * 3600.0   # the cache's own package lists are used for a day after an update
UPDATED = ".updated"


@dataclass(frozen=True)
class Source:
    """The Debian packages one binary comes from, and which tests need it."""

    package: str                 # the package named in the fetch line, whose version is printed
    packages: tuple[str, ...]    # all unpacked together: the binary's package and its own libraries
    path: str                    # the binary inside the unpacked tree
    needed_by: str


REDIS = Source("redis-server", ("redis-server", "redis-tools", "libjemalloc2", "liblzf1"),
               "usr/bin/redis-server", "the shared-state, replica and dashboard tests")
PROMETHEUS = Source("prometheus", ("prometheus",), "usr/bin/prometheus",
                    "the Prometheus scrape and dashboard tests")
PROMTOOL = Source("prometheus", ("prometheus",), "usr/bin/promtool", "the alert-rule tests")
SOURCES = {"redis-server": REDIS, "prometheus": PROMETHEUS, "promtool": PROMTOOL}
# Chromium needs some hundred libraries of the machine's own: it is installed with apt-get (as root), not
# unpacked into the cache.
INSTALLED = {"chromium": ("chromium", "the console's browser tests")}


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# Where the one-line notes go; tests/conftest.py points it past pytest's capture.
announce: Callable[[str], None] = _to_stderr


def default_cache() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recloser-test-services"


def find(name: str) -> Path:
    """The binary `name` (one of SOURCES): on the PATH, else in the cache, else fetched; once per process
    (a fetch that failed is not tried again by every test that needs it: each gets the same error)."""
    found = _found(name)
    if isinstance(found, Exception):
        raise RuntimeError(f"{name} could not be found or fetched: {found}") from None
    return found


@functools.cache
def _found(name: str) -> Path | Exception:
    try:
        return locate(name, os.environ.get("PATH", os.defpath), default_cache())
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return exc


def locate(name: str, search_path: str, cache: Path) -> Path:
    if name not in SOURCES and name not in INSTALLED:
        raise ValueError(f"unknown service binary {name!r}; known: {', '.join([*SOURCES, *INSTALLED])}")
    on_path = shutil.which(name, path=search_path)
    if on_path is not None:
        return Path(on_path)
    if name in INSTALLED:
        return install(name, search_path)
    cache.mkdir(parents=True, exist_ok=True)
    launcher = cache / "bin" / name
    with _locked(cache):
        if not (launcher.exists() and _runs(launcher)):
            _fetch(name, SOURCES[name], cache, search_path)
    return launcher


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """One fetch at a time per cache folder (two test runs may share it)."""
    with (cache / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _runs(binary: Path) -> bool:
    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, timeout=RUN_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except OSError:
        return False
    return done.returncode == 0


def _tilde(path: Path) -> str:
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home):] if home != "/" and (text == home or text.startswith(home + "/")) else text


def install(name: str, search_path: str) -> Path:
    """Installs `name`'s Debian package on the machine (apt-get install, as root; the package lists are
    updated first when they do not have it), and says so in one line."""
    package, needed_by = INSTALLED[name]
    if os.geteuid() != 0:
        raise RuntimeError(f"{name} is not on the PATH and only root may install it: "
                           f"apt-get install {package} (needed by {needed_by})")
    env = {**os.environ, "PATH": search_path, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["apt-get", "-q", *argv], env=env, capture_output=True, text=True,
                              timeout=APT_TIMEOUT_S * 2, stdin=subprocess.DEVNULL)

    announce(f"installing {package} from Debian's packages (apt-get install): needed by {needed_by}, "
             f"and {name} is not on the PATH")
    done = apt("install", "-y", "--no-install-recommends", package)
    if done.returncode != 0:
        apt("update")
        done = apt("install", "-y", "--no-install-recommends", package)
    found = shutil.which(name, path=search_path) or shutil.which(name, path=os.defpath)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"apt-get install {package} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return Path(found)


# --- fetching from Debian's packages ---------------------------------------------------------------


class Apt:
    """apt-get and apt-cache reading either the machine's package lists or the cache's own copy;
    apt's cache files always go to the cache folder, so nothing outside it is written."""

    def __init__(self, cache: Path, search_path: str) -> None:
        self.cache = cache
        self.env = {**os.environ, "PATH": search_path, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
        lists = cache / "apt" / "lists"
        fresh = (lists / UPDATED).exists() and time.time() - (lists / UPDATED).stat().st_mtime < LISTS_FRESH_S
        self.private_lists: Path | None = lists if fresh else None   # None: the machine's own lists
        self.refreshed = False
        for tool in ("apt-get", "apt-cache", "dpkg-deb", "dpkg-query"):
            if shutil.which(tool, path=search_path) is None:
                raise RuntimeError(f"{tool} is not on the PATH: this machine cannot fetch Debian's packages; "
                                   "install redis-server and prometheus (with promtool) and put them on the PATH")

    def options(self) -> list[str]:
        opts = ["-q", "-o", f"Dir::Cache={self.cache / 'apt' / 'cache'}"]
        if self.private_lists is not None:
            opts += ["-o", f"Dir::State::Lists={self.private_lists}"]
        if os.geteuid() == 0:   # apt's download user cannot enter a folder under root's home
            opts += ["-o", "APT::Sandbox::User=root"]
        return opts

    def run(self, argv: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), cwd=cwd, env=self.env, capture_output=True, text=True,
                              timeout=APT_TIMEOUT_S, stdin=subprocess.DEVNULL)

    def refresh_lists(self, why: str) -> None:
        lists = self.cache / "apt" / "lists"
        (lists / "partial").mkdir(parents=True, exist_ok=True)
        announce(f"refreshing Debian's package lists into {_tilde(lists)} (apt-get update): {why}")
        self.private_lists, self.refreshed = lists, True
        done = self.run(["apt-get", "update", *self.options()])
        if done.returncode != 0:
            raise RuntimeError(f"apt-get update failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        (lists / UPDATED).touch()

    def show(self, packages: Sequence[str]) -> dict[str, dict[str, str]]:
        """The candidate stanza (Version, Depends, …) of each package the lists know."""
        (self.cache / "apt" / "cache").mkdir(parents=True, exist_ok=True)
        done = self.run(["apt-cache", *self.options(), "show", "--no-all-versions", *packages])
        stanzas: dict[str, dict[str, str]] = {}
        for block in done.stdout.strip().split("\n\n"):
            fields = dict(re.findall(r"^([\w-]+): ?(.*)$", block, flags=re.MULTILINE))
            if "Package" in fields and "Version" in fields:
                stanzas.setdefault(fields["Package"], fields)
        return stanzas

    def installed(self, package: str) -> bool:
        done = self.run(["dpkg-query", "-W", "-f=${db:Status-Status}", package])
        return done.returncode == 0 and done.stdout.strip() == "installed"

    def closure(self, packages: Sequence[str]) -> dict[str, str] | None:
        """The candidate version of each of `packages` and of every library they need that the machine
        lacks (and so on down); None when the lists do not have one of `packages`."""
        versions: dict[str, str] = {}
        todo = list(packages)
        while todo:
            stanzas = self.show(todo)
            if not set(packages) <= set(stanzas) | set(versions):
                return None
            versions.update({name: stanza["Version"] for name, stanza in stanzas.items()})
            todo = []
            for stanza in stanzas.values():
                for group in filter(None, (g.strip() for g in stanza.get("Depends", "").split(","))):
                    choices = [re.split(r"[\s(:]", c.strip(), maxsplit=1)[0] for c in group.split("|")]
                    wanted = choices[0]
                    if (wanted.startswith("lib") and wanted not in versions and wanted not in todo
                            and not any(self.installed(c) for c in choices)):
                        todo.append(wanted)
        return versions

    def download(self, packages: Sequence[str], into: Path) -> subprocess.CompletedProcess[str]:
        return self.run(["apt-get", *self.options(), "download", *packages], cwd=into)


def _upstream(version: str) -> str:
    """5:7.0.15-1~deb12u10 → 7.0.15; 2.42.0+ds-5+deb12u1 → 2.42.0."""
    return re.split(r"[-+~]", version.split(":", 1)[-1], maxsplit=1)[0]


def _fetch(name: str, source: Source, cache: Path, search_path: str) -> None:
    """Download the source's packages (the machine's lists first, the cache's refreshed copy if those
    fail), unpack them into one tree per version, write the launchers and check the binary runs."""
    apt = Apt(cache, search_path)
    binaries = sorted(n for n, s in SOURCES.items() if s.packages == source.packages)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as scratch:
        debs = Path(scratch) / "debs"
        debs.mkdir()
        announced = False
        while True:  # at most twice: the lists at hand, then freshly updated ones
            versions = apt.closure(source.packages)
            if versions is None and not apt.refreshed:
                apt.refresh_lists(f"the lists at hand do not have {', '.join(source.packages)}")
                continue
            if versions is None:
                raise RuntimeError(f"Debian's package lists have no {' or '.join(source.packages)} for this machine")
            version = _upstream(versions[source.package])
            if not announced:
                what = f"{source.package} {version}" + (f" ({', '.join(binaries)})" if binaries != [name] else "")
                libraries = sorted(p for p in versions if p.startswith("lib"))
                announce(f"fetching {what}{' with ' + ', '.join(libraries) if libraries else ''} from Debian's "
                         f"packages into {_tilde(cache)}: needed by {source.needed_by}, and {name} is not on the PATH")
                announced = True
            done = apt.download(list(versions), debs)
            if done.returncode == 0:
                break
            if apt.refreshed:
                raise RuntimeError(f"apt-get download {' '.join(versions)} failed ({done.returncode}):\n"
                                   f"{done.stdout}\n{done.stderr}")
            apt.refresh_lists(f"the lists at hand cannot download {', '.join(versions)}")
            for deb in debs.glob("*.deb"):
                deb.unlink()
        unpacking = Path(scratch) / "tree"
        for deb in sorted(debs.glob("*.deb")):
            done = apt.run(["dpkg-deb", "-x", str(deb), str(unpacking)])
            if done.returncode != 0:
                raise RuntimeError(f"dpkg-deb -x {deb.name} failed ({done.returncode}): {done.stderr}")
        tree = cache / f"{source.package}-{version}"
        if tree.exists():
            shutil.rmtree(tree)
        unpacking.rename(tree)

    for binary in binaries:
        _write_launcher(cache / "bin" / binary, tree, tree / SOURCES[binary].path)
    launcher = cache / "bin" / name
    ran = subprocess.run([str(launcher), "--version"], capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                         stdin=subprocess.DEVNULL)
    if ran.returncode != 0:
        raise RuntimeError(f"the fetched {name} does not run ({launcher} --version: exit {ran.returncode}):\n"
                           f"{ran.stdout}\n{ran.stderr}")


def _library_dirs(tree: Path) -> list[Path]:
    """The folders of the unpacked tree that hold shared libraries (lib*.so*, not plugins)."""
    return sorted({so.parent for so in tree.rglob("lib*.so*") if "lib" in so.parent.relative_to(tree).parts[:2]})


def _write_launcher(launcher: Path, tree: Path, binary: Path) -> None:
    """A sh script that runs `binary` (exec: the same pid, so signals reach it) with its libraries found."""
    lines = ["#!/bin/sh", f"# {binary.name} from Debian's packages, unpacked by tests/services.py"]
    libs = _library_dirs(tree)
    if libs:
        joined = shlex.quote(":".join(str(d) for d in libs))
        lines.append(f'LD_LIBRARY_PATH={joined}"${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"; export LD_LIBRARY_PATH')
    lines.append(f'exec {shlex.quote(str(binary))} "$@"')
    launcher.parent.mkdir(parents=True, exist_ok=True)
    partial = launcher.with_name(f".{launcher.name}.partial")
    partial.write_text("\n".join(lines) + "\n")
    partial.chmod(0o755)
    partial.replace(launcher)


def main(argv: Sequence[str]) -> None:
    for name in argv or [*SOURCES, *INSTALLED]:
        print(f"{name} {find(name)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
