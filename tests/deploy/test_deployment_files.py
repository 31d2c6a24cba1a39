"""The deployment files: Kubernetes manifests valid against the schema offline (`kubernetes-validate
--strict`), with the probes, drain, secrets, reload and scraping ops rely on; a compose file with the
services the stack needs, each file it mounts present; a slim non-root image with a health check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from gateway.policy.load import load_policy, parse_policy

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))


def validate(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", *map(str, files)],
                          capture_output=True, text=True, timeout=120)


def resources() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            found[doc["kind"]] = doc
    return found


def test_the_manifests_validate_against_the_kubernetes_schema_offline() -> None:
    checked = validate(*MANIFESTS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert set(resources()) == {"ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget",
                                "HorizontalPodAutoscaler"}


def test_the_validation_refuses_a_misspelt_field(tmp_path: Path) -> None:
    bad = tmp_path / "deployment.yaml"
    bad.write_text((DEPLOY / "kubernetes" / "deployment.yaml").read_text().replace("replicas: 2", "replicaz: 2"))
    refused = validate(bad)
    assert refused.returncode != 0 and "replicaz" in refused.stdout + refused.stderr


def test_the_deployment_probes_drains_reads_keys_from_secrets_and_is_scraped() -> None:
    found = resources()
    pod = found["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "preStop" in container["lifecycle"]
    assert pod["spec"]["terminationGracePeriodSeconds"] >= 30
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert {"secretRef": {"name": found["Secret"]["metadata"]["name"]}} in container["envFrom"]
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    # Mounted as a directory: a subPath mount would never see the ConfigMap change, so no reload.
    policy_mount = next(m for m in container["volumeMounts"] if m["name"] == "policy")
    assert "subPath" not in policy_mount
    assert container["args"][-1] == policy_mount["mountPath"] + "/policy.yaml"
    assert found["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == found["Deployment"]["metadata"]["name"]
    assert found["PodDisruptionBudget"]["spec"]["minAvailable"] >= 1


def test_the_configmap_policy_passes_check_with_its_keys_from_the_environment() -> None:
    policy = resources()["ConfigMap"]["data"]["policy.yaml"]
    keys = {"OPENAI_API_KEY": "sk-from-secret", "ANTHROPIC_API_KEY": "sk-ant-from-secret"}
    loaded = parse_policy(policy, "configmap:policy.yaml", keys)
    assert loaded.document.auth is not None
    assert set(resources()["Secret"]["stringData"]) == set(keys)


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_the_compose_file_has_two_gateways_redis_prometheus_and_grafana() -> None:
    services = compose()["services"]
    assert {"gateway-1", "gateway-2", "redis", "prometheus", "grafana"} <= set(services)
    for name in ("gateway-1", "gateway-2"):
        assert services[name]["build"]["dockerfile"] == "Dockerfile"
        assert any(v.endswith(":/etc/recloser/policy.yaml:ro") for v in services[name]["volumes"])
    scrape = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == ["gateway-1:8080", "gateway-2:8080"]
    grafana = " ".join(services["grafana"]["volumes"])
    assert "./grafana/provisioning:" in grafana and "./grafana/dashboards:" in grafana


def test_every_file_the_compose_file_mounts_exists() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is missing"


def test_the_compose_policy_serves_simulated_providers_without_provider_keys() -> None:
    loaded = load_policy(DEPLOY / "compose" / "policy.yaml")
    assert {p.kind for p in loaded.document.providers.values()} == {"sim"}
    assert all(p.api_key is None for p in loaded.document.providers.values())
    assert loaded.document.auth is not None, "the replicas listen beyond loopback, so clients need keys"
    state = loaded.document.state
    assert state is not None and state.redis_url.get_secret_value().startswith("redis://redis:"), \
        "the replicas share state through the compose file's Redis"


def test_the_image_is_slim_runs_as_a_user_and_checks_its_health() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    froms = [line for line in lines if line.startswith("FROM ")]
    assert froms and all("-slim" in line for line in froms)
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("0", "root")
    health = next(line for i, line in enumerate(lines) if line.startswith("HEALTHCHECK"))
    assert "/healthz" in " ".join(lines[lines.index(health):lines.index(health) + 2])

