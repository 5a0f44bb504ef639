"""Wires settings -> evaluator -> registry -> WSGI app. Builds; starts nothing.

The evaluator thread is started by gunicorn's post_worker_init hook (exporter/serve/gunicorn_options.py),
inside the single worker, never in the master.
"""

import logging
from dataclasses import dataclass

from exporter.config.settings import Settings, redact_url
from exporter.serve.app import create_app
from exporter.serve.evaluator import Evaluator
from exporter.serve.rules_source import RulesSource
from exporter.serve.telemetry import build_registry

log = logging.getLogger("llm_healthcheck")


@dataclass
class Runtime:
    settings: Settings
    evaluator: Evaluator
    app: object


_current: Runtime | None = None


def install(runtime: Runtime) -> None:
    """The worker's one Runtime, so gunicorn hooks reach what the app was built with."""
    global _current
    _current = runtime


def current(required: bool = True) -> Runtime | None:
    if _current is None and required:
        raise RuntimeError("llm-healthcheck runtime was not built in this process")
    return _current


def build_runtime(settings: Settings) -> Runtime:
    """Raises ConfigError when the rules do not load: the caller reports it and exits."""
    evaluator = Evaluator(settings, RulesSource(settings))
    registry = build_registry(lambda: evaluator.decision)
    app = create_app(evaluator, registry, settings.enable_reload_endpoint)
    return Runtime(settings, evaluator, app)


def describe(settings: Settings, evaluator: Evaluator) -> str:
    """The startup line: effective settings, secrets redacted."""
    config = evaluator.config
    rules = settings.rules_path or (f"seed rule sum({settings.metric_to_check}) > {settings.metric_threshold:g}")
    return (
        f"listening on {settings.bind_host}:{settings.port}; scraping "
        f"{redact_url(config.endpoint)} every {config.interval:g}s (timeout {config.timeout:g}s, "
        f"on_failure={config.on_failure} after {config.failure_threshold}, "
        f"on_empty={config.on_empty}, body cap {settings.max_body_bytes} bytes); rules: {rules}; "
        f"reload every {settings.reload_interval:g}s, endpoint "
        f"{'enabled' if settings.enable_reload_endpoint else 'disabled'}; "
        f"shutdown drain {settings.shutdown_drain:g}s"
    )
