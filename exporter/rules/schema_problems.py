"""What the JSON Schema says is wrong with a rule file, in words an operator can act on: one
problem per offending value, the key named, the bad value quoted, a hint for YAML 1.1
surprises and misspelt keys."""

import json
from functools import cache
from importlib import resources

import jsonschema

from exporter.config.numbers import is_finite_number
from exporter.config.urls import redact_url
from exporter.config.yamldoc import surprise_hint, surprising_number, unknown_key
from exporter.rules.file_context import FileContext, shown_value

DURATION_KEYS = frozenset({"for", "keep_firing_for", "interval", "timeout", "max_age"})
_TYPE_WORDS = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
}
# Keys people bring from Prometheus alerting rules or guess from the word "threshold".
_KEY_HINTS = {
    "threshold": "above or below",
    "alert": "name",
    "expression": "expr",
    "query": "expr",
    "annotations": "description",
    "summary": "description",
    "keep_firing": "keep_firing_for",
    "recover": "recover_below or recover_above",
    "url": "endpoint",
    "scrape_interval": "interval",
    "scrape_timeout": "timeout",
    "groups": "rules",
}


@cache
def load_schema() -> dict:
    """The rule-file JSON Schema shipped inside the package (a copy of schemas/rules.schema.json)."""
    return json.loads(resources.files("exporter").joinpath("data/rules.schema.json").read_text("utf-8"))


@cache
def _validator():
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


_PRIORITY = ("enum", "type", "anyOf", "const", "pattern", "minLength", "minimum")


def schema_problems(ctx: FileContext) -> set:
    """Validate against the schema; report one problem per offending value; return the bad paths."""
    per_path: dict[tuple, tuple | None] = {}  # path -> (rank, error); None: reported already
    for error in _validator().iter_errors(ctx.doc.value):
        path = tuple(error.absolute_path)
        if any(path[:i] in ctx.doc.aliased for i in range(len(path) + 1)):
            per_path.setdefault(path, None)  # the alias is the problem there, already reported
            continue
        if error.validator == "additionalProperties":
            allowed = list(error.schema.get("properties", {}))
            for key in error.instance:
                if key not in allowed:
                    ctx.add(path + (key,), unknown_key(key, allowed, _KEY_HINTS), key=True)
                    per_path.setdefault(path + (key,), None)
            continue
        if error.validator == "required":
            for key in error.validator_value:
                if key not in error.instance:
                    ctx.add(path, f'missing required key "{key}"')
            continue
        current = per_path.get(path)
        rank = _PRIORITY.index(error.validator) if error.validator in _PRIORITY else len(_PRIORITY)
        if current is None or rank < current[0]:
            per_path[path] = (rank, error)
    for path, chosen in per_path.items():
        if chosen is not None:
            ctx.add(path, _describe(ctx, path, chosen[1]))
    return set(per_path)


def _describe(ctx: FileContext, path: tuple, error) -> str:
    key = path[-1] if path else None
    value = error.instance
    spot = ctx.doc.spots.get(path)
    shown = ctx.shown(path)
    hint = surprise_hint(spot, value)
    suffix = f" ({hint})" if hint and "the key has no value" not in hint else ""
    if isinstance(key, int):
        listed = "fleet.queries" if path[:2] == ("fleet", "queries") else "rules"
        return f"each entry of {listed} must be a mapping with name and expr, got {_kind(value, shown)}{suffix}"
    if key is None:
        return f"a rule file must be a mapping with rules: (and optionally scrape:), got {_kind(value, shown)}"
    if key in DURATION_KEYS:
        return f"{key}: {_duration_message(value, shown)}{suffix}"
    validator = error.validator
    if validator == "type":
        wanted = error.validator_value
        wanted = (
            _TYPE_WORDS.get(wanted, wanted) if isinstance(wanted, str) else " or ".join(_TYPE_WORDS[w] for w in wanted)
        )
        return f"{key}: want {wanted}, got {_kind(value, shown)}{suffix}"
    if validator == "enum":
        return f"{key}: want one of {', '.join(error.validator_value)}, got {_kind(value, shown)}{suffix}"
    if validator == "pattern" and key == "name":
        return (
            f"name: {shown} is not a valid rule name; use letters, digits and _ . : -, starting with a letter "
            f"or _, at most 128 characters"
        )
    if validator == "pattern" and key in ("endpoint", "url"):
        url = json.dumps(redact_url(value)) if isinstance(value, str) else shown
        return f"{key}: {url} is not an http:// or https:// URL"
    if validator == "minLength":
        return f"{key}: must not be empty"
    if validator == "minimum":
        return f"{key}: {shown} must be at least {error.validator_value}"
    return f"{key}: {shown}: {lower_first(error.message)}"


def _duration_message(value, shown: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"bare number {shown} has no unit; write {json.dumps(_with_unit(value))}"
    if isinstance(value, str):
        return f"{shown} is not a duration; write a whole number and unit like 10s, 800ms or 1m30s"
    return f"want a duration like 10s, got {_kind(value, shown)}"


def _with_unit(number) -> str:
    if not is_finite_number(number):
        return "10s"  # .nan, .inf or 400 digits written as a duration: show the form, not a conversion
    if float(number).is_integer():
        return f"{int(number)}s"
    return f"{round(number * 1000)}ms"


def _kind(value, shown: str) -> str:
    if isinstance(value, (dict, list)) or value is None:
        return shown_value(value)
    return shown


def surprise_problems(ctx: FileContext, bad_paths: set) -> None:
    """Numbers the schema accepted but YAML 1.1 read differently from how they look (010 is 8)."""
    for path, spot in ctx.doc.spots.items():
        if path in bad_paths or not path or spot.raw is None:
            continue
        value = ctx.value(path)
        hint = surprising_number(spot, value)
        if hint:
            ctx.add(path, f"{path[-1]}: {json.dumps(spot.raw)}: {hint}")
            bad_paths.add(path)


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
