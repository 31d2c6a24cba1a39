"""How the suite finds Debian's chromium for the console's browser tests (tests/services.py): on the PATH
as it is; where it is missing, installed by root, and a clear refusal for anyone else. No apt run here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import services


def test_a_chromium_on_the_path_is_used_as_it_is(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    assert services.locate("chromium", str(tmp_path), tmp_path / "cache") == chromium


def test_a_missing_chromium_without_root_is_refused_with_the_command_that_installs_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services.os, "geteuid", lambda: 1000)
    with pytest.raises(RuntimeError, match=r"only root may install it: apt-get install chromium"):
        services.locate("chromium", str(tmp_path), tmp_path / "cache")
