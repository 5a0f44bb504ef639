"""`llm-healthcheck serve`: run the sidecar under gunicorn (also what plain `llm-healthcheck` does)."""

import os
import shlex

from exporter.config.errors import ConfigError, Problem
from exporter.config.settings import check_workers

HELP = "Run the readiness sidecar under gunicorn (the default command)."

# flag -> the env variable it overrides (flags win over env, env over the rule file)
FLAGS = {
    "--port": ("APP_PORT", "port to listen on (env APP_PORT, default 8081)"),
    "--bind-host": ("BIND_HOST", "address to bind (env BIND_HOST, default 0.0.0.0)"),
    "--rules": (
        "RULES_PATH",
        "rule file or directory (env RULES_PATH; default none: the seed env vars form one rule)",
    ),
    "--metrics-endpoint": (
        "METRICS_ENDPOINT",
        "inference server /metrics URL (env METRICS_ENDPOINT, default http://localhost:8080/metrics)",
    ),
    "--metric-to-check": ("METRIC_TO_CHECK", "seed mode: metric to sum (env METRIC_TO_CHECK, default tgi_queue_size)"),
    "--metric-threshold": (
        "METRIC_THRESHOLD",
        "seed mode: unhealthy when the sum is > this (env METRIC_THRESHOLD, default 15)",
    ),
    "--scrape-interval": ("SCRAPE_INTERVAL", "time between scrapes, e.g. 1s (env SCRAPE_INTERVAL, default 1s)"),
    "--scrape-timeout": (
        "SCRAPE_TIMEOUT",
        "whole-scrape deadline, below the interval (env SCRAPE_TIMEOUT, default 80%% of the interval)",
    ),
    "--failure-threshold": (
        "FAILURE_THRESHOLD",
        "consecutive failed scrapes before on_failure applies (env FAILURE_THRESHOLD, default 3)",
    ),
    "--on-failure": (
        "ON_FAILURE",
        "unready | ready | hold when scrapes keep failing (env ON_FAILURE, default unready)",
    ),
    "--on-empty": ("ON_EMPTY", "ready | unready for an empty or `null` body (env ON_EMPTY, default ready)"),
    "--max-body-bytes": ("SCRAPE_MAX_BODY_BYTES", "body size cap (env SCRAPE_MAX_BODY_BYTES, default 4 MiB)"),
    "--history-max-series": (
        "HISTORY_MAX_SERIES",
        "series kept for rule evaluation at most (env HISTORY_MAX_SERIES, default 20000)",
    ),
    "--reload-interval": (
        "RELOAD_INTERVAL",
        "how often rule files are checked for changes (env RELOAD_INTERVAL, default 5s)",
    ),
    "--log-format": ("LOG_FORMAT", "text | json (env LOG_FORMAT, default text)"),
    "--log-level": ("LOG_LEVEL", "debug | info | warning | error (env LOG_LEVEL, default info)"),
    "--threads": ("THREADS", "request threads in the one worker (env THREADS, default 4)"),
    "--shutdown-drain": (
        "SHUTDOWN_DRAIN_SECONDS",
        "after SIGTERM, answer 503 this long before exiting (env SHUTDOWN_DRAIN_SECONDS, default 5s)",
    ),
    "--agent-port": ("AGENT_PORT", "answer HAProxy's agent-check on this TCP port (env AGENT_PORT; off by default)"),
    "--graceful-timeout": ("GRACEFUL_TIMEOUT", "gunicorn's graceful timeout (env GRACEFUL_TIMEOUT, default 20s)"),
}


def add_arguments(parser) -> None:
    for flag, (env, text) in FLAGS.items():
        parser.add_argument(flag, dest=env, metavar=env, help=text)
    parser.add_argument(
        "--enable-reload-endpoint",
        dest="ENABLE_RELOAD_ENDPOINT",
        action="store_const",
        const="true",
        help="accept POST /-/reload (env ENABLE_RELOAD_ENDPOINT, default off)",
    )
    parser.add_argument("--workers", default=None, help="refused unless 1: rule state lives in the one worker")


def run(args) -> int:
    from exporter.config.settings import load_settings
    from exporter.serve.logs import configure_logging
    from exporter.serve.runtime import build_runtime, describe, install

    check_workers(args.workers, "--workers")
    overrides = {k: v for k, v in vars(args).items() if k.isupper() and v is not None}
    settings = load_settings(os.environ, overrides)
    configure_logging(settings.log_format, settings.log_level)
    runtime = build_runtime(settings)
    install(runtime)
    if settings.agent_port:
        from exporter.serve import agent_check

        try:
            agent_check.listen(settings.bind_host, settings.agent_port)
        except OSError as err:
            where = f"agent port {settings.bind_host}:{settings.agent_port}"
            raise ConfigError([Problem(where, message=f"cannot listen: {err.strerror or err}")]) from None

    app = _GunicornApp(runtime)
    check_workers(app.cfg.workers, "env GUNICORN_CMD_ARGS")
    import logging

    logging.getLogger("llm_healthcheck").info("%s", describe(settings, runtime.evaluator))
    app.run()
    return 0


def _gunicorn_base():
    from gunicorn.app.base import BaseApplication

    return BaseApplication


class _GunicornApp(_gunicorn_base()):
    def __init__(self, runtime):
        self._runtime = runtime
        super().__init__()

    def load_config(self):
        from exporter.serve.gunicorn_options import options

        for key, value in options(self._runtime.settings).items():
            self.cfg.set(key, value)
        # Honour GUNICORN_CMD_ARGS as the gunicorn command does (a workers count in it is refused).
        extra = os.environ.get("GUNICORN_CMD_ARGS", "")
        if extra:
            parsed = self.cfg.parser().parse_args(shlex.split(extra))
            for key, value in vars(parsed).items():
                if value is not None and key != "args":
                    self.cfg.set(key.lower(), value)

    def load(self):
        return self._runtime.app
