"""The `fleet:` block of a rule file -> FleetConfig, with what the JSON Schema cannot say.

The schema has already checked the types (a URL, durations, a number, a mapping of strings);
here: the URL is the instant-query endpoint, the timings fit together, query names are usable
as series names, each query parses as PromQL, and the guard has the two counts it needs.
Queries are full PromQL (Prometheus evaluates them, not the sidecar), so only the syntax is
checked, not the sidecar's subset.
"""

import json
import math
import re
from urllib.parse import urlsplit

from exporter.config.durations import parse_duration
from exporter.config.errors import Problem
from exporter.config.fleet_config import (
    DEFAULT_INTERVAL,
    GUARD_QUERIES,
    SERIES_PREFIX,
    FleetConfig,
    default_max_age,
    default_timeout,
)
from exporter.config.settings import redact_url
from exporter.config.urls import check_url
from exporter.promql import PromQLError
from exporter.promql.compiler import MAX_LENGTH, parse

QUERY_PATH = "/api/v1/query"
_QUERY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class FleetBlock:
    """The fleet: block across the loaded files: at most one file may carry it."""

    def __init__(self):
        self.config: FleetConfig | None = None
        self._at = ""

    def load(self, ctx, bad_paths: set) -> None:
        if not isinstance(ctx.doc.value.get("fleet"), dict):
            return
        if self._at:
            ctx.add(("fleet",), f"only one file may have a fleet block; the first is at {self._at}", key=True)
            return
        self._at = ctx.where(("fleet",), key=True)
        self.config = load_fleet_block(ctx, bad_paths)


def load_fleet_block(ctx, bad_paths: set) -> FleetConfig | None:
    """The file's fleet block as a FleetConfig, or None if absent or wrong (problems added to ctx)."""
    block = ctx.doc.value.get("fleet")
    if not isinstance(block, dict):
        return None
    failed_before = len(ctx.problems)
    base = ("fleet",)
    ok = {key: value for key, value in block.items() if base + (key,) not in bad_paths}
    url = ok.get("url")
    if isinstance(url, str) and check_url(url):  # checked whole first: urlsplit may raise on it
        ctx.add(base + ("url",), f"url: {json.dumps(redact_url(url))} {check_url(url)}")
    elif isinstance(url, str) and not urlsplit(url).path.endswith(QUERY_PATH):
        ctx.add(
            base + ("url",),
            f"url: {json.dumps(redact_url(url))} is not an instant-query endpoint; give the whole URL, "
            f"ending in {QUERY_PATH} (for example http://prometheus.monitoring:9090{QUERY_PATH})",
        )
    seconds = {key: _seconds(ok[key]) for key in ("interval", "timeout", "max_age") if key in ok}
    for key, value in seconds.items():
        if value <= 0:
            ctx.add(base + (key,), f"{key}: {ctx.shown(base + (key,))} must be greater than zero")
    interval = seconds.get("interval", DEFAULT_INTERVAL)
    timeout = seconds.get("timeout", default_timeout(interval))
    max_age = seconds.get("max_age", default_max_age(interval, timeout))
    if "timeout" in seconds and timeout > 0 and timeout >= interval > 0:
        ctx.add(
            base + ("timeout",),
            f"timeout: {ctx.shown(base + ('timeout',))} must be less than interval "
            f"({_shown_interval(ctx, base)}), or query rounds would overlap",
        )
    if "max_age" in seconds and 0 < max_age < interval:
        ctx.add(
            base + ("max_age",),
            f"max_age: {ctx.shown(base + ('max_age',))} must be at least interval ({_shown_interval(ctx, base)}), "
            f"or every answer would be too old before the next one arrives",
        )
    fraction = ok.get("max_unready_fraction")
    if fraction is not None and not (math.isfinite(fraction) and 0 <= fraction < 1):
        ctx.add(
            base + ("max_unready_fraction",),
            f"max_unready_fraction: {ctx.shown(base + ('max_unready_fraction',))} must be at least 0 and below 1 "
            f"(the share of the fleet's pods that may be unready before the guard keeps this pod in)",
        )
    queries = _queries(ctx, ok.get("queries"), base + ("queries",))
    if fraction is not None and "queries" in ok:
        named = {entry.get("name") for entry in ok["queries"] if isinstance(entry, dict)}  # valid or not
        missing = [name for name in GUARD_QUERIES if name not in named]
        if missing:
            ctx.add(
                base + ("max_unready_fraction",),
                f"max_unready_fraction needs {'a query' if len(missing) == 1 else 'queries'} named "
                f"{' and '.join(missing)} (pods: how many pods the fleet has; unready: how many of them are unready)",
                key=True,
            )
    if len(ctx.problems) > failed_before or set(ok) != set(block) or url is None:
        return None
    return FleetConfig(url, interval, timeout, max_age, None if fraction is None else float(fraction), queries)


def _queries(ctx, entries, path) -> tuple[tuple[str, str], ...]:
    if not isinstance(entries, list):
        return ()
    if not entries:
        ctx.add(path, "queries: name at least one query (for example pods and unready)")
        return ()
    found: dict[str, str] = {}
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue  # the schema reported it
        name, text = entry.get("name"), entry.get("expr")
        if isinstance(name, str):
            if not _QUERY_NAME.fullmatch(name):
                ctx.add(
                    path + (index, "name"),
                    f"name: {ctx.shown(path + (index, 'name'))} is not a usable query name; rules read it as "
                    f"{SERIES_PREFIX}<name>, so use letters, digits and _, starting with a letter or _, "
                    f"at most 64 characters",
                )
                continue
            if name in seen:
                ctx.add(path + (index, "name"), f'name: "{name}" is already the name of another query in this block')
                continue
            seen.add(name)
        if not isinstance(name, str) or not isinstance(text, str) or not text.strip():
            continue  # the schema reported it
        error = _syntax_error(text)
        if error:
            ctx.add(path + (index, "expr"), f'query "{name}": expr: {error}')
            continue
        found[name] = text
    # The guard's counts first: they are what a round cannot do without.
    order = {name: i for i, name in enumerate(GUARD_QUERIES)}
    return tuple(sorted(found.items(), key=lambda item: order.get(item[0], len(order))))


def _syntax_error(text: str) -> str | None:
    if len(text) > MAX_LENGTH:
        return f"query is longer than {MAX_LENGTH} characters"
    try:
        parse(text)
    except PromQLError as err:
        return str(err)
    return None


def fleet_reference_problems(rules_at: list, fleet: FleetConfig | None) -> list[Problem]:
    """Rules that read a fleet:<name> series no query produces: a typo that would read "no data"
    forever. Without a fleet block any fleet:<name> is allowed: a pack may read the fleet view
    and still work standalone until an operator adds the block."""
    if fleet is None:
        return []
    known = fleet.series_names
    problems = []
    for rule, (file, line, col) in rules_at:
        names = rule.expr.metric_names or frozenset()
        for name in sorted(n for n in names if n.startswith(SERIES_PREFIX) and n not in known):
            choices = ", ".join(sorted(known))
            problems.append(
                Problem(
                    file,
                    line,
                    col,
                    rule.name,
                    f'expr: reads {name}, but the fleet block has no query named "{name[len(SERIES_PREFIX) :]}" '
                    f"(it has {choices})",
                )
            )
    return problems


def _seconds(value) -> float:
    return 0.0 if value == 0 else parse_duration(value)


def _shown_interval(ctx, base) -> str:
    return ctx.shown(base + ("interval",)) if "interval" in ctx.doc.value["fleet"] else "the default 15s"
