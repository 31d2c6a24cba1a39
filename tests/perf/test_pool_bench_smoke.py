"""The pool benchmark's own pieces work: its policies load, its traffic is the same every run, its
capacity estimate follows the sim's model, and a row prints. No timing is asserted here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pool_bench import HEADER, MODES, Outcome, Row, Workload, estimate, policy  # noqa: E402


def test_each_modes_policy_loads_with_the_cloud_target_last(tmp_path: Path) -> None:
    from gateway.policy.load import load_policy

    for mode in MODES:
        (tmp_path / "p.yaml").write_text(policy(mode, [9001, 9002, 9003, 9004], 9005))
        targets = load_policy(tmp_path / "p.yaml").document.routes["chat"].targets
        assert targets[-1].provider == "cloud" and len(targets) in (2, 5)


def test_the_traffic_is_the_same_every_run_and_conversations_grow() -> None:
    a, b = Workload(), Workload()
    first = [a.next() for _ in range(300)]
    assert first == [b.next() for _ in range(300)]
    assert max(len(body["messages"]) for body in first) > 2          # later turns carry their history
    assert len({body["messages"][0]["content"] for body in first}) == 20


def test_capacity_is_estimated_and_a_row_prints(capsys: object) -> None:
    capacity, best_rate, mean_prompt = estimate()
    assert capacity > 0 and 0 < best_rate < 1 and mean_prompt > 600
    outcomes = [Outcome(sent_at=i * 0.1, status=200, ttft_s=0.05, done_at=i * 0.1 + 0.5,
                        provider="cloud" if i % 4 == 0 else "local") for i in range(40)]
    row = Row("pool picker", "1×", capacity, outcomes, 0.8, 0.9, 0.01, capacity)
    cells = row.cells()
    print(" | ".join(cells))
    assert len(cells) == len(HEADER) and cells[7] == "25%" and cells[-1] == "0"
