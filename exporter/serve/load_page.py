"""`/load`: only the unlabeled gauge llm_healthcheck_load, for utilization-based load balancers.

GKE's custom-metrics balancing (AutoscalingMetric) reads a Prometheus text page from a port
and path of the pod and ignores labels, so this page holds exactly one sample: no process
metrics, no rule families to filter out, nothing a balancer could mistake for the score.
"""

from prometheus_client.utils import floatToGoString

from exporter.core.load_score import LoadScore, published

NAME = "llm_healthcheck_load"
HELP = "How full the pod is, 0 (idle) to 1 (full), from the rule files' score section (1 when the data is stale)."
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def current_load(decision) -> LoadScore:
    """The score a decision publishes (terminating and starting count as stale)."""
    return published(decision.load, decision.ruleset.score, decision.ready, decision.phase)


def render_load(decision) -> bytes:
    value = current_load(decision).value
    return f"# HELP {NAME} {HELP}\n# TYPE {NAME} gauge\n{NAME} {floatToGoString(value)}\n".encode()


class LoadResource:
    def __init__(self, evaluator):
        self._evaluator = evaluator

    def on_get(self, req, resp):
        resp.content_type = CONTENT_TYPE
        resp.cache_control = ["no-store"]
        resp.data = render_load(self._evaluator.decision)

    def on_head(self, req, resp):
        self.on_get(req, resp)


def load_line(decision) -> str:
    """The /health?verbose line: the score, why, and each input."""
    load = current_load(decision)
    text = f"[+]load {_shown(load.value)} ({load.state}: {load.reason}"
    if load.inputs:
        text += "; " + ", ".join(f"{name} {_shown(value)}" for name, value in load.inputs)
    return text + ")"


def load_document(decision) -> dict:
    """The score and its inputs, for the JSON answer and /rules."""
    load = current_load(decision)
    spec = decision.ruleset.score
    document = {
        "value": load.value,
        "state": load.state,
        "reason": load.reason,
        "raw": _json(load.raw),
        "inputs": {name: _json(value) for name, value in load.inputs},
        "errors": dict(load.errors),
    }
    if spec is not None:
        document["definition"] = {
            "description": spec.description,
            "params": [{"name": p.name, "value": p.value, "description": p.description} for p in spec.params],
            "terms": [{"name": t.name, "expr": t.expr_text, "description": t.description} for t in spec.terms],
            "on_missing": spec.on_missing,
            "on_stale": spec.on_stale,
            "source": spec.source,
        }
    return document


def _shown(value) -> str:
    return "no data" if value is None else f"{value:.4g}"


def _json(value):
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None if value is None else str(value)
    return value
