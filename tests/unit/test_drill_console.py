"""The drill's console: results on stdout, progress on stderr; in place on a terminal, a line per change elsewhere."""

from __future__ import annotations

import io

from gateway.commands.drill_runner import Console


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_progress_is_redrawn_in_place_and_erased_before_a_result() -> None:
    out, err = io.StringIO(), Terminal()
    console = Console(out, err)
    console.progress("  [  1 s] breakers on: healthy (1/5) …")
    console.tick("  [  2 s] breakers on: healthy (1/5) …")
    console.line("healthy  on  100.0%")
    console.close()
    assert out.getvalue() == "healthy  on  100.0%\n"
    assert err.getvalue() == ("  [  1 s] breakers on: healthy (1/5) …" "\r\033[K" "  [  2 s] breakers on: healthy (1/5) …"
                              "\r\033[K")


def test_elsewhere_each_change_is_a_line_and_ticks_are_left_out() -> None:
    out, err = io.StringIO(), io.StringIO()
    console = Console(out, err)
    console.progress("  [  1 s] breakers on: healthy (1/5) …")
    console.tick("  [  2 s] breakers on: healthy (1/5) …")
    console.line("healthy  on  100.0%")
    assert err.getvalue() == "  [  1 s] breakers on: healthy (1/5) …\n"
    assert out.getvalue() == "healthy  on  100.0%\n"
