"""The crossing table in the code is the one in the README, and it names every dropped feature."""

from __future__ import annotations

from pathlib import Path

from gateway.wires import features

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_shows_the_crossing_table_as_the_code_has_it() -> None:
    assert features.markdown() in README.read_text()


def test_every_feature_a_crossing_may_drop_has_a_row() -> None:
    named = {row.how for row in features.TABLE if row.action == "dropped"}
    assert named == features.DROPPABLE
