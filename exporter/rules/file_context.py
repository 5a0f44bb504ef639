"""One rule file while it is checked: its parsed document, where each rule starts, and how
a path in it is shown and located (`file:line:col: rule "name": ...`)."""

import json

from exporter.config.errors import Problem
from exporter.config.yamldoc import Document


class FileContext:
    """One file's document, its spots and the problems found in it."""

    def __init__(self, file: str, doc: Document, problems: list):
        self.file = file
        self.doc = doc
        self.problems = problems
        self._rule_lines = self._rule_start_lines()

    def _rule_start_lines(self):
        rules = self.doc.value.get("rules") if isinstance(self.doc.value, dict) else None
        if not isinstance(rules, list):
            return []
        lines = []
        for index, entry in enumerate(rules):
            spot = self.doc.spots.get(("rules", index))
            name = entry.get("name") if isinstance(entry, dict) else None
            if spot:
                lines.append((spot.line, name if isinstance(name, str) else None))
        return lines

    def rule_at_line(self, line: int) -> str | None:
        name = None
        for start, candidate in self._rule_lines:
            if start > line:
                break
            name = candidate
        return name

    def rule_of(self, path) -> str | None:
        if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
            rules = self.doc.value["rules"]
            entry = rules[path[1]] if path[1] < len(rules) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            return name if isinstance(name, str) else None
        return None

    def position(self, path, key: bool = False) -> tuple[int, int]:
        return self.doc.position(path, key)

    def where(self, path, key: bool = False, line_only: bool = False) -> str:
        line, col = self.position(path, key)
        return f"{self.file}:{line}" if line_only else f"{self.file}:{line}:{col}"

    def add(self, path, message: str, key: bool = False) -> None:
        line, col = self.position(path, key)
        self.problems.append(Problem(self.file, line, col, self.rule_of(path), message))

    def value(self, path):
        value = self.doc.value
        for part in path:
            value = value[part]
        return value

    def shown(self, path) -> str:
        """The value as the operator wrote it, quoted."""
        spot = self.doc.spots.get(tuple(path))
        if spot is not None and spot.raw is not None:
            return "nothing" if spot.raw == "" and spot.plain else json.dumps(spot.raw)
        return shown_value(self.value(path))


def shown_value(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return json.dumps(value if isinstance(value, str) else _plain_number(value))


def _plain_number(value):
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
