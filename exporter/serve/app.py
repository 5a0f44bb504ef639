"""HTTP surface: thin Falcon resources over the evaluator's published decision. No logic here."""

import falcon

from exporter.serve import probe_answer
from exporter.serve.explain import health_document, rules_document, verbose_lines
from exporter.serve.load_page import LoadResource
from exporter.serve.status_http import PATHS, add_status_routes, attach_publisher, status_answer
from exporter.serve.telemetry import render

TEXT = probe_answer.TEXT


class HealthResource:
    def __init__(self, evaluator):
        self._evaluator = evaluator

    def on_get(self, req, resp):
        decision = self._evaluator.decision
        status, _, plain_body = probe_answer.ANSWERS[decision.ready]
        resp.status = status
        resp.cache_control = ["no-store"]
        if probe_answer.wants_json(req.accept):
            resp.media = health_document(decision)
        elif "verbose" in req.params:
            resp.content_type = TEXT
            resp.text = "\n".join(verbose_lines(decision)) + "\n"
        else:
            resp.content_type = TEXT
            resp.data = plain_body

    def on_head(self, req, resp):
        self.on_get(req, resp)


class LivezResource:
    def __init__(self, evaluator):
        self._evaluator = evaluator

    def on_get(self, req, resp):
        resp.content_type = TEXT
        if self._evaluator.alive():
            resp.text = "ok\n"
        else:
            resp.status = falcon.HTTP_503
            resp.text = "evaluator loop has not finished a cycle in time\n"

    def on_head(self, req, resp):
        self.on_get(req, resp)


class MetricsResource:
    def __init__(self, registry):
        self._registry = registry

    def on_get(self, req, resp):
        body, content_type = render(self._registry, req.get_header("Accept"))
        resp.content_type = content_type
        resp.data = body


class RulesResource:
    def __init__(self, evaluator):
        self._evaluator = evaluator

    def on_get(self, req, resp):
        resp.media = rules_document(self._evaluator.decision)


class ReloadResource:
    """POST /-/reload: only when enabled by flag; Prometheus' lifecycle endpoint works alike."""

    def __init__(self, evaluator, enabled: bool, wait_seconds: float = 10.0):
        self._evaluator = evaluator
        self._enabled = enabled
        self._wait = wait_seconds

    def on_post(self, req, resp):
        resp.content_type = TEXT
        if not self._enabled:
            resp.status = falcon.HTTP_403
            resp.text = (
                "reload endpoint is disabled; enable it with --enable-reload-endpoint or ENABLE_RELOAD_ENDPOINT=true\n"
            )
            return
        ok = self._evaluator.request_reload(wait=self._wait)
        if ok:
            resp.text = "rules reloaded\n"
        else:
            resp.status = falcon.HTTP_500
            detail = self._evaluator.last_reload.last_error if ok is False else "timed out"
            resp.text = f"rules reload failed; previous rules kept:\n{detail}\n"


class ProbeFastPath:
    """WSGI wrapper that answers the plain probe, `GET|HEAD /health`, before Falcon's routing.

    The kubelet and load balancers send that one request, many times a second in a probe
    storm; building Falcon's request and response objects for it costs more than reading the
    decision. The answer is byte for byte what HealthResource gives; anything else (a query
    string, a JSON Accept, another path or method) goes to the Falcon app unchanged.
    `probe_answer` offers the same answer to the gunicorn worker, which can send it without
    handing the connection to a thread (exporter/serve/probe_worker.py).
    """

    def __init__(self, evaluator, app: falcon.App, status=None):
        self._evaluator = evaluator
        self.app = app  # the Falcon app, for callers that need it
        self.status = status  # exporter.serve.status.StatusPublisher: `/` and /api/v1/status as bytes

    def __call__(self, environ, start_response):
        if (
            environ.get("PATH_INFO") == probe_answer.PATH
            and not environ.get("QUERY_STRING")
            and environ.get("REQUEST_METHOD") in probe_answer.METHODS
            and not probe_answer.wants_json(environ.get("HTTP_ACCEPT"))
        ):
            status, headers, body = self.probe_answer()
            start_response(status, list(headers))
            return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]
        if environ.get("PATH_INFO") in PATHS and environ.get("REQUEST_METHOD") in probe_answer.METHODS and self.status:
            status, headers, body = self.page_answer(environ["PATH_INFO"], environ.get("QUERY_STRING", ""))
            start_response(status, list(headers))
            return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]
        return self.app(environ, start_response)

    def page_answer(self, path: str, query: str = "") -> tuple:
        """(status, headers, body) of the status page or its JSON, pre-rendered bytes."""
        return status_answer(self.status, path, query)

    def probe_answer(self) -> tuple:
        """(status, headers, body) of the plain probe for the current decision."""
        return probe_answer.ANSWERS[self._evaluator.decision.ready]


def create_app(evaluator, registry, enable_reload: bool = False) -> ProbeFastPath:
    app = falcon.App(media_type=falcon.MEDIA_JSON)
    app.add_route("/health", HealthResource(evaluator))
    app.add_route("/livez", LivezResource(evaluator))
    app.add_route("/metrics", MetricsResource(registry))
    app.add_route("/rules", RulesResource(evaluator))
    app.add_route("/load", LoadResource(evaluator))
    app.add_route("/-/reload", ReloadResource(evaluator, enable_reload))
    status = attach_publisher(evaluator)
    add_status_routes(app, status)
    return ProbeFastPath(evaluator, app, status)
