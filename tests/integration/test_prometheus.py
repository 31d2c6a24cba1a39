"""A real Prometheus scrapes the gateway: the spend dashboards' queries see what the ledger holds."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests import services
from tests.conftest import GatewayFactory, free_port
from tests.integration.test_metering import HELLO, client, ledger_lines, policy

SCRAPE_INTERVAL = "1s"


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant query: each series' labels (without __name__) and its value."""
        r = httpx.get(self.url + "/api/v1/query", params={"query": promql}, timeout=5)
        r.raise_for_status()
        body = r.json()
        assert body["status"] == "success", body
        return {tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__")): float(s["value"][1])
                for s in body["data"]["result"]}

    def wait_for(self, promql: str, expected: float, timeout_s: float = 30.0) -> dict[tuple[tuple[str, str], ...], float]:
        """Polls until the query's sum is `expected` (a scrape after the traffic landed); bounded."""
        deadline = time.monotonic() + timeout_s
        result: dict[tuple[tuple[str, str], ...], float] = {}
        while time.monotonic() < deadline:
            result = self.query(promql)
            if sum(result.values()) == expected:
                return result
            time.sleep(0.2)
        raise AssertionError(f"{promql} never summed to {expected} within {timeout_s} s: {result}")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str], Prometheus]]:
    binary = services.find("prometheus")
    procs: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> Prometheus:
        config = tmp_path / "prometheus.yml"
        config.write_text(f"global: {{scrape_interval: {SCRAPE_INTERVAL}, evaluation_interval: {SCRAPE_INTERVAL}}}\n"
                          f"scrape_configs:\n  - job_name: recloser\n    static_configs: [{{targets: ['{target}']}}]\n")
        port = free_port()
        procs.append(subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb")))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                    return Prometheus(url)
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"prometheus not ready: {(tmp_path / 'prometheus.log').read_text()[-2000:]}")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=15)


def test_spend_per_team_queried_from_prometheus_equals_the_ledger(
        start_gateway: GatewayFactory, prometheus: Callable[[str], Prometheus], tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = start_gateway(policy(ledger))
    prom = prometheus(f"127.0.0.1:{gw.port}")
    for _ in range(3):
        client(gw, "search").chat.completions.create(model="chat", messages=HELLO)
    list(client(gw, "search").chat.completions.create(model="chat", messages=HELLO, stream=True))
    list(client(gw, "ads").chat.completions.create(model="cheap", messages=HELLO, stream=True))
    lines = ledger_lines(gw, ledger)

    prom.wait_for("sum(recloser_requests_total)", 5)
    by_team = prom.query("sum by (team) (recloser_cost_usd_total)")
    for team in ("search", "ads"):
        in_ledger = sum(Decimal(line["cost_usd"]) for line in lines if line["team"] == team)
        assert in_ledger > 0
        assert by_team[(("team", team),)] == float(in_ledger)
    tokens = prom.query('sum by (type) (recloser_tokens_total{team="search"})')
    assert tokens[(("type", "input"),)] == sum(line["input_tokens"] for line in lines if line["team"] == "search")
    assert tokens[(("type", "output"),)] == sum(line["output_tokens"] for line in lines if line["team"] == "search")
    by_route = prom.query("sum by (route, status) (recloser_requests_total)")
    assert by_route == {(("route", "chat"), ("status", "200")): 4.0, (("route", "cheap"), ("status", "200")): 1.0}
