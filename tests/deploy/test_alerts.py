"""The alert rules pass `promtool check rules`, their unit tests pass `promtool test rules`, and every
alert has a case in which it fires and one in which it stays quiet."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests import services

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(services.find("promtool")), *args], cwd=RULES, capture_output=True, text=True,
                          timeout=120)


def test_the_rules_pass_promtool_check() -> None:
    checked = promtool("check", "rules", "alerts.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rules_pass_their_promtool_unit_tests() -> None:
    tested = promtool("test", "rules", "alerts.test.yaml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_case_that_fires_and_one_that_does_not() -> None:
    rules = yaml.safe_load((RULES / "alerts.yaml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    cases = yaml.safe_load((RULES / "alerts.test.yaml").read_text())["tests"]
    checks = [c for t in cases for c in t["alert_rule_test"]]
    fires = {c["alertname"] for c in checks if c["exp_alerts"]}
    quiet = {c["alertname"] for c in checks if not c["exp_alerts"]}
    assert alerts == fires == quiet


def test_every_alert_says_what_to_do() -> None:
    rules = yaml.safe_load((RULES / "alerts.yaml").read_text())
    for rule in (r for g in rules["groups"] for r in g["rules"]):
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 80, rule["alert"]


def test_the_alerts_cover_what_ops_must_be_paged_for() -> None:
    rules = yaml.safe_load((RULES / "alerts.yaml").read_text())
    assert {r["alert"] for g in rules["groups"] for r in g["rules"]} >= {
        "RecloserDeploymentEjected", "RecloserRouteHasNoHealthyTarget", "RecloserFailoverRateHigh",
        "RecloserTimeToFirstTokenFarAboveBaseline", "RecloserBudgetBurningFast", "RecloserRequestsShed",
        "RecloserGatewayDown", "RecloserStateBackendDown"}
