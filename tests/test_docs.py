"""The configuration reference cannot drift: every env var and serve flag is documented, and the
rule-key table is generated from the JSON Schema (UPDATE_DOCS=1 rewrites it)."""

import json
import os
import re
from pathlib import Path

from exporter.commands.serve import FLAGS
from exporter.config.settings import ENV_NAMES

DOC = Path(__file__).parents[1] / "docs" / "configuration.md"
SCHEMA = Path(__file__).parents[1] / "schemas" / "rules.schema.json"
BEGIN, END = "<!-- rule-keys:begin (generated from schemas/rules.schema.json) -->", "<!-- rule-keys:end -->"


def rule_key_table() -> str:
    schema = json.loads(SCHEMA.read_text())
    rows = ["| key | meaning |", "|---|---|"]

    def walk(node, prefix):
        node = _resolve(schema, node)
        for key, declared in node.get("properties", {}).items():
            sub = _resolve(schema, declared)
            text = declared.get("description") or sub.get("description", "")
            rows.append(f"| `{prefix}{key}` | {text.replace('|', '/')} |")
            if sub.get("type") == "object":
                walk(sub, f"{prefix}{key}.")
            elif sub.get("type") == "array":
                walk(sub.get("items", {}), f"{prefix}{key}[].")

    walk(schema, "")
    return "\n".join(rows)


def _resolve(schema, node):
    while "$ref" in node:
        path = node["$ref"].removeprefix("#/").split("/")
        node = schema
        for part in path:
            node = node[part]
    return node


def test_rule_key_table_is_generated_from_the_schema():
    text = DOC.read_text()
    table = f"{BEGIN}\n{rule_key_table()}\n{END}"
    if os.environ.get("UPDATE_DOCS"):
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: table, text, flags=re.S)
        DOC.write_text(text)
    assert table in text


def test_every_env_var_and_flag_is_documented():
    text = DOC.read_text()
    missing = [name for name in ENV_NAMES if f"`{name}`" not in text]
    missing += [flag for flag in [*FLAGS, "--enable-reload-endpoint", "--workers"] if f"`{flag}" not in text]
    assert missing == []
