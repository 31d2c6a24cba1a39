"""The pool benchmark's own pieces work: its policies load, its traffic is the same every run, its
capacity estimate follows the sim's model, and a row prints. No timing is asserted here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pool_bench import ALL_MODES, Workload, estimate, policy  # noqa: E402
from pool_report import HEADER, Outcome, Row  # noqa: E402


def test_each_modes_policy_loads_with_the_cloud_target_last(tmp_path: Path) -> None:
    from gateway.policy.load import load_policy

    for mode in ALL_MODES:
        (tmp_path / "p.yaml").write_text(policy(mode, [9001, 9002, 9003], 9005))
        targets = load_policy(tmp_path / "p.yaml").document.routes["chat"].targets
        assert targets[-1].provider == "cloud" and len(targets) in (2, 4)


def test_the_traffic_is_the_same_every_run_and_agent_sessions_grow_beside_short_chats() -> None:
    a, b = Workload(), Workload()
    first = [a.next() for _ in range(300)]
    assert first == [b.next() for _ in range(300)]
    agents = [body for body in first if body.get("tools")]
    assert max(len(body["messages"]) for body in agents) > 10       # later turns carry their tool results
    assert len({body["messages"][0]["content"] for body in agents}) == 2    # two agents' system prompts
    assert 0.2 < 1 - len(agents) / len(first) < 0.4                 # short chats beside them


def test_capacity_is_estimated_and_a_row_prints(capsys: object) -> None:
    capacity, best_rate, mean_prompt = estimate()
    assert 40 < capacity < 80 and 0 < best_rate < 1 and mean_prompt > 600
    outcomes = [Outcome(sent_at=i * 0.1, status=200, ttft_s=0.05, done_at=i * 0.1 + 0.5,
                        provider="cloud" if i % 4 == 0 else "local") for i in range(40)]
    row = Row("pool picker", "1×", capacity, outcomes, 0.8, 0.9, 0.01, capacity)
    cells = row.cells()
    print(" | ".join(cells))
    assert len(cells) == len(HEADER) and cells[HEADER.index("spilled")] == "25%" and cells[-1] == "0"


def test_the_prefix_cost_benchmark_prints_its_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    import prefix_cost

    argv, sys.argv = sys.argv, ["prefix_cost.py", "--requests", "50"]
    try:
        prefix_cost.main()
    finally:
        sys.argv = argv
    assert "µs per request" in capsys.readouterr().out
