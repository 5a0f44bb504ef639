"""Structural schemas for the GKE resources of deploy/kubernetes/gke and gke-utilization, written
from GKE's documentation (cited in docs/load-balancing.md): required fields, types, enums and
ranges, unknown keys rejected in the parts these manifests use. tests/test_manifests.py
validates every manifest with them."""

_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_DURATION = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h))+$"}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {"name": _NAME, "namespace": _NAME, "labels": _STRING_MAP, "annotations": _STRING_MAP},
}
# BackendService backends[].customMetrics[].name: 1-64 characters, [a-z]([-_.a-z0-9]*[a-z0-9])?
LB_METRIC_NAME = r"^[a-z]([-_.a-z0-9]{0,62}[a-z0-9])?$"


def _closed(properties: dict, required=()) -> dict:
    return {"type": "object", "additionalProperties": False, "required": list(required), "properties": properties}


def _resource(api_version: str, kind: str, spec: dict) -> dict:
    return _closed(
        {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": _METADATA, "spec": spec},
        ["apiVersion", "kind", "metadata", "spec"],
    )


_MATCH_LABELS = _closed({"matchLabels": _STRING_MAP}, ["matchLabels"])
_SERVICE_REF = _closed(
    {"group": {"type": "string"}, "kind": {"enum": ["Service", "ServiceImport"]}, "name": _NAME, "namespace": _NAME},
    ["group", "kind", "name"],
)

SCHEMAS = {
    # Google Managed Prometheus, monitoring.googleapis.com/v1
    ("monitoring.googleapis.com/v1", "PodMonitoring"): _resource(
        "monitoring.googleapis.com/v1",
        "PodMonitoring",
        _closed(
            {
                "selector": _MATCH_LABELS,
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": _closed(
                        {
                            "port": {"anyOf": [{"type": "string", "minLength": 1}, _PORT]},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": _DURATION,
                            "timeout": _DURATION,
                        },
                        ["port"],
                    ),
                },
            },
            ["selector", "endpoints"],
        ),
    ),
    # GKE custom metrics for load balancing, autoscaling.gke.io/v1beta1, in the shape GKE's
    # load-balancing pages use: which pods, which port and path, which metric under which name.
    ("autoscaling.gke.io/v1beta1", "AutoscalingMetric"): _resource(
        "autoscaling.gke.io/v1beta1",
        "AutoscalingMetric",
        _closed(
            {
                "selector": _MATCH_LABELS,
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": _closed(
                        {
                            "port": _PORT,
                            "path": {"type": "string", "pattern": "^/"},
                            "metrics": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": 10,
                                "items": _closed(
                                    {
                                        "name": {"type": "string", "pattern": r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
                                        "exportName": {"type": "string", "pattern": LB_METRIC_NAME},
                                    },
                                    ["name"],
                                ),
                            },
                        },
                        ["port", "metrics"],
                    ),
                },
            },
            ["selector", "endpoints"],
        ),
    ),
    # GKE Gateway policies, networking.gke.io/v1: the parts these manifests use, both flavours
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
                        "balancingMode": {"enum": ["RATE", "UTILIZATION", "CONNECTION", "CUSTOM_METRICS"]},
                        "customMetrics": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 10,
                            "items": _closed(
                                {
                                    "name": {"type": "string", "minLength": 1},
                                    "maxUtilizationPercent": {"type": "integer", "minimum": 0, "maximum": 100},
                                    "dryRun": {"type": "boolean"},
                                },
                                ["name", "dryRun"],
                            ),
                        },
                    }
                ),
                "targetRef": _SERVICE_REF,
            },
            ["default", "targetRef"],
        ),
    ),
}

# kustomize patches: inline JSON 6902 patches on one target each (what the overlays use).
KUSTOMIZE_PATCHES = {
    "type": "array",
    "items": _closed(
        {
            "target": _closed({"kind": {"type": "string"}, "name": _NAME}, ["kind", "name"]),
            "patch": {"type": "string", "minLength": 1},
        },
        ["target", "patch"],
    ),
}
