"""Environment variables and command-line flags -> one frozen Settings.

The seed sidecar's variables keep their names and defaults: METRICS_ENDPOINT, METRIC_TO_CHECK,
METRIC_THRESHOLD (alias METRICS_THRESHOLD, which the seed's README named but the seed ignored),
APP_PORT. Every value is checked here, once, at startup: a bad one stops the process with one
line naming the variable and the value (exit code 2), instead of the seed's silent fallback.

Scrape keys left unset (None) may come from the rule file's `scrape:` block; flags and env win
over the file, and DEFAULTS fill the rest (see effective_scrape).
"""

import math
import re
from dataclasses import dataclass, fields, replace

from exporter.config import durations
from exporter.config.bounds import MAX_COUNT, duration_problem
from exporter.config.errors import ConfigError, Problem
from exporter.config.numbers import parse_number, parse_whole
from exporter.config.scrape_config import EMPTY_POLICIES, FAILURE_POLICIES, ScrapeConfig, timeout_problem
from exporter.config.urls import check_url, redact_url

SEED_ENDPOINT = "http://localhost:8080/metrics"
SEED_METRIC = "tgi_queue_size"
SEED_THRESHOLD = 15.0
SEED_PORT = 8081

# Scrape defaults when neither env/flags nor the rule file set them.
DEFAULT_SCRAPE = ScrapeConfig(
    endpoint=SEED_ENDPOINT,
    interval=1.0,
    timeout=None,  # derived: 80% of the interval
    on_failure="unready",
    failure_threshold=3,
    on_empty="ready",
)


@dataclass(frozen=True)
class Settings:
    metric_to_check: str = SEED_METRIC
    metric_threshold: float = SEED_THRESHOLD
    port: int = SEED_PORT
    bind_host: str = "0.0.0.0"
    rules_path: str | None = None
    scrape: ScrapeConfig = ScrapeConfig()  # only what env/flags set; None = not set
    max_body_bytes: int = 4 * 1024 * 1024  # 40x the largest real page; the worst-case RSS depends on it
    history_max_series: int = 20_000  # bounds memory whatever the upstream prints
    reload_interval: float = 5.0
    enable_reload_endpoint: bool = False
    log_format: str = "text"
    log_level: str = "info"
    threads: int = 4
    shutdown_drain: float = 5.0
    graceful_timeout: float = 20.0
    agent_port: int | None = None  # HAProxy agent-check port (exporter.serve.agent_check); None: off


# env name -> (Settings field or "scrape.<key>", parser)
def _env_table():
    return {
        "METRICS_ENDPOINT": ("scrape.endpoint", _parse_url),
        "METRIC_TO_CHECK": ("metric_to_check", _parse_metric_name),
        "METRIC_THRESHOLD": ("metric_threshold", parse_number),
        "APP_PORT": ("port", _parse_port),
        "AGENT_PORT": ("agent_port", _parse_port),
        "BIND_HOST": ("bind_host", _parse_nonempty),
        "RULES_PATH": ("rules_path", _parse_nonempty),
        "SCRAPE_INTERVAL": ("scrape.interval", _bounded_duration("interval")),
        "SCRAPE_TIMEOUT": ("scrape.timeout", _bounded_duration("timeout")),
        "ON_FAILURE": ("scrape.on_failure", _choice(FAILURE_POLICIES)),
        "FAILURE_THRESHOLD": ("scrape.failure_threshold", _parse_positive_int),
        "ON_EMPTY": ("scrape.on_empty", _choice(EMPTY_POLICIES)),
        "SCRAPE_MAX_BODY_BYTES": ("max_body_bytes", _parse_positive_int),
        "HISTORY_MAX_SERIES": ("history_max_series", _parse_positive_int),
        "RELOAD_INTERVAL": ("reload_interval", _bounded_duration("reload_interval")),
        "ENABLE_RELOAD_ENDPOINT": ("enable_reload_endpoint", _parse_bool),
        "LOG_FORMAT": ("log_format", _choice(("text", "json"))),
        "LOG_LEVEL": ("log_level", _choice(("debug", "info", "warning", "error"))),
        "THREADS": ("threads", _parse_positive_int),
        "SHUTDOWN_DRAIN_SECONDS": ("shutdown_drain", _bounded_duration("shutdown_drain")),
        "GRACEFUL_TIMEOUT": ("graceful_timeout", _bounded_duration("graceful_timeout")),
    }


def load_settings(environ, overrides: dict | None = None) -> Settings:
    """Build Settings from an environment mapping and flag overrides ({env name: raw value}).

    Flags are given under the env name they override, so both share one parser and one message.
    Raises ConfigError with every problem found.
    """
    raw = {name: environ[name] for name in ENV_NAMES if environ.get(name, "") != ""}
    problems: list[Problem] = []
    _merge_threshold_alias(raw, problems)
    for name, value in (overrides or {}).items():
        if value is not None:
            raw[name] = str(value)
            if name == "METRIC_THRESHOLD":
                raw.pop("METRICS_THRESHOLD", None)

    values, scrape = {}, {}
    for name, (target, parse) in _env_table().items():
        if name not in raw:
            continue
        try:
            parsed = parse(raw[name])
        except ValueError as err:
            shown = redact_url(raw[name].strip()) if parse is _parse_url else raw[name]
            problems.append(Problem(f"env {name}", message=f'"{shown}" {err}'))
            continue
        if target.startswith("scrape."):
            scrape[target.removeprefix("scrape.")] = parsed
        else:
            values[target] = parsed

    settings = Settings(**values, scrape=ScrapeConfig(**scrape))
    workers = workers_problem(environ.get("WEB_CONCURRENCY"), "env WEB_CONCURRENCY")
    if workers is not None:
        problems.append(workers)
    if problems:
        raise ConfigError(problems)
    return settings


def effective_scrape(settings: Settings, from_rules: ScrapeConfig) -> ScrapeConfig:
    """Flags/env over the rule file's scrape block over DEFAULT_SCRAPE; derives the timeout."""
    merged = {}
    for f in fields(ScrapeConfig):
        for source in (settings.scrape, from_rules, DEFAULT_SCRAPE):
            value = getattr(source, f.name)
            if value is not None:
                merged[f.name] = value
                break
    config = ScrapeConfig(**merged)
    if config.timeout is None:
        interval = config.interval if config.interval is not None else 1.0  # DEFAULT_SCRAPE sets it
        config = replace(config, timeout=round(interval * 0.8, 6))
    return config


def check_scrape(config: ScrapeConfig, origin: str = "settings") -> list[Problem]:
    """The cross-field rule on the merged configuration (see timeout_problem)."""
    timeout, interval = config.timeout, config.interval
    assert timeout is not None and interval is not None  # effective_scrape fills both
    shown = [f'"{durations.format_duration(seconds)}"' for seconds in (timeout, interval)]
    overlap = timeout_problem(timeout, interval, *shown)
    return [Problem(origin, message=overlap)] if overlap else []


def _merge_threshold_alias(raw: dict, problems: list) -> None:
    alias = raw.pop("METRICS_THRESHOLD", None)
    if alias is None:
        return
    main = raw.get("METRIC_THRESHOLD")
    if main is None:
        raw["METRIC_THRESHOLD"] = alias
        return
    try:
        same = float(main) == float(alias)
    except ValueError:
        same = main.strip() == alias.strip()
    if not same:
        problems.append(
            Problem(
                "env METRICS_THRESHOLD",
                message=(
                    f'"{alias}" differs from METRIC_THRESHOLD "{main}"; set only one '
                    "(METRICS_THRESHOLD is an alias of METRIC_THRESHOLD)"
                ),
            )
        )


def workers_problem(count, source: str) -> Problem | None:
    """The one-worker rule, in its one wording, for every place a worker count can be asked
    for: env WEB_CONCURRENCY, `serve --workers`, GUNICORN_CMD_ARGS, a gunicorn command line."""
    if count is None or str(count).strip() in ("", "1"):
        return None
    return Problem(source, message=f"{str(count).strip()} workers requested; {WORKERS_REASON}")


def check_workers(count, source: str) -> None:
    problem = workers_problem(count, source)
    if problem is not None:
        raise ConfigError([problem])


WORKERS_REASON = (
    "llm-healthcheck runs exactly one worker, because rule state and hysteresis live in "
    "that worker's memory and several workers would each scrape the inference server and "
    "could answer the kubelet differently"
)


def _parse_port(text: str) -> int:
    return parse_whole(text, 1, 65535)


def _parse_positive_int(text: str) -> int:
    digits = text.strip().lstrip("+-")
    if len(digits) > 12 and digits.isdigit():  # also keeps int() off strings of thousands of digits
        raise ValueError(f"is too large (at most {MAX_COUNT})")
    value = parse_whole(text, 1)
    if value > MAX_COUNT:
        raise ValueError(f"is too large (at most {MAX_COUNT})")
    return value


def parse_duration(text: str) -> float:
    """Seconds from plain `1.5` or a Prometheus-style duration, fractions allowed (`1m30s`, `0.2s`)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return durations.parse_duration(text, fractions=True)
    except ValueError:
        raise ValueError("is not a duration (e.g. 1s, 800ms, 1m30s)") from None


def _bounded_duration(name: str):
    """A duration parser that also holds the value to bounds.DURATIONS[name]."""

    def parse(text: str) -> float:
        value = parse_duration(text)
        problem = duration_problem(name, value) if math.isfinite(value) else "must be a finite duration"
        if problem:
            raise ValueError(problem)
        return value

    return parse


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("is not a boolean (true or false)")


def _parse_url(text: str) -> str:
    text = text.strip()
    problem = check_url(text)
    if problem:
        raise ValueError(problem)
    return text


_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def _parse_metric_name(text: str) -> str:
    text = text.strip()
    if not _METRIC_NAME.match(text):
        raise ValueError("is not a metric name")
    return text


def _parse_nonempty(text: str) -> str:
    return text.strip()


def _choice(options):
    def parse(text: str) -> str:
        lowered = text.strip().lower()
        if lowered not in options:
            raise ValueError(f"is not one of: {', '.join(options)}")
        return lowered

    return parse


ENV_NAMES = tuple(_env_table()) + ("METRICS_THRESHOLD",)
