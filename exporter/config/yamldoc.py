"""Strict YAML reading that remembers where every value came from.

Rule files are small and hand-written, so the loader is strict where PyYAML is lenient:
duplicate keys and anchors/aliases are problems (a copy-pasted block that silently
overrides another is the classic ConfigMap mistake), and every value keeps its line and
column so schema errors can point at the text the operator typed.

YAML 1.1 (what PyYAML speaks) turns some innocent-looking text into other types: `on`
and `yes` become booleans, `010` is octal 8, `1:30` is the base-60 number 90, `1e3` stays
a string. `surprise_hint` explains these next to the value, and `surprising_number`
flags the numeric ones that would otherwise be accepted silently.
"""

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_ALIAS_TAG = "tag:llm-healthcheck,alias"  # stands in for an alias, which is already a problem


@dataclass(frozen=True)
class Spot:
    """Where a value sits: 1-based line and column of the value and of its key (if any)."""

    line: int
    col: int
    raw: str | None = None  # the source text of a scalar, as written
    plain: bool = True  # unquoted scalar: the only kind YAML 1.1 retypes
    key_line: int = 0
    key_col: int = 0
    alias: bool = False  # an alias stood here (already a problem); its value is None


@dataclass(frozen=True)
class YamlProblem:
    line: int
    col: int
    message: str


@dataclass
class Document:
    value: Any  # plain dicts, lists and scalars, as YAML gave them
    spots: dict  # path tuple -> Spot; () is the root
    problems: list  # YamlProblem, in source order
    aliased: frozenset = frozenset()  # paths where an alias stood: reported, judge nothing else there

    def position(self, path, key: bool = False) -> tuple[int, int]:
        """(line, col) of the value at `path`, or of its key when `key`; (1, 1) when unknown."""
        spot = self.spots.get(tuple(path))
        if spot is None:
            return 1, 1
        if key and spot.key_line:
            return spot.key_line, spot.key_col
        return spot.line, spot.col


def parse_document(text: str) -> Document:
    """Parse one YAML document. A syntax error yields a Document with value None and one
    problem; structural problems (duplicates, aliases, tags) are collected and parsing goes on."""
    problems: list[YamlProblem] = []
    try:
        loader = _StrictLoader(text, problems)
    except yaml.reader.ReaderError as err:
        return Document(None, {}, [_reader_problem(text, err)])
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return Document(None, {}, [YamlProblem(line, col, _syntax_message(err))])
    except yaml.reader.ReaderError as err:
        return Document(None, {}, [_reader_problem(text, err)])
    except yaml.YAMLError as err:
        return Document(None, {}, [YamlProblem(1, 1, f"invalid YAML: {_lower_first(str(err))}")])
    except RecursionError:
        return Document(None, {}, [YamlProblem(1, 1, "invalid YAML: nested too deeply")])
    finally:
        loader.dispose()
    if node is None:
        return Document(None, {(): Spot(1, 1)}, problems)
    spots: dict = {}
    try:
        value = _convert(loader, node, (), spots, problems, None)
    except RecursionError:
        return Document(None, {}, [YamlProblem(1, 1, "invalid YAML: nested too deeply")])
    problems.sort(key=lambda p: (p.line, p.col))
    aliased = frozenset(path for path, spot in spots.items() if spot.alias)
    return Document(value, spots, problems, aliased)


_FLOATISH = re.compile(r"^[-+]?(\d[\d_]*\.?[\d_]*|\.\d+)[eE][-+]?\d+$")
_OCTAL = re.compile(r"^[-+]?0[0-7_]+$")
_BASE = re.compile(r"^[-+]?0[box]")


def surprise_hint(spot: Spot | None, value: object) -> str:
    """A short explanation when YAML 1.1 read the text as something the writer likely did not mean."""
    if spot is None or spot.raw is None or not spot.plain:
        return ""
    raw = spot.raw
    if isinstance(value, bool) and raw.lower() not in ("true", "false"):
        return f"YAML 1.1 reads {raw} as the boolean {str(value).lower()}; quote it if you mean the text"
    if isinstance(value, str) and _FLOATISH.match(raw):
        return f"YAML 1.1 reads {raw} as text, not a number; write {_float_spelling(raw)}"
    if value is None and raw == "":
        return "the key has no value"
    number_hint = surprising_number(spot, value)
    return number_hint or ""


def surprising_number(spot: Spot | None, value: object) -> str:
    """A hint if an accepted number was spelled in a form YAML 1.1 retypes (octal, hex, base 60, `_`)."""
    if spot is None or spot.raw is None or not spot.plain or isinstance(value, bool):
        return ""
    if not isinstance(value, (int, float)):
        return ""
    raw = spot.raw
    shown = _number_text(value)
    if isinstance(value, int) and _OCTAL.match(raw) and raw.strip("+-") != "0":
        decimal = ("-" if raw.startswith("-") else "") + raw.lstrip("+-").lstrip("0").replace("_", "")
        return f"YAML 1.1 reads {raw} as the octal number {shown}; write {decimal} without the leading zero"
    if _BASE.match(raw):
        return f"YAML 1.1 reads {raw} as {shown}; write the decimal number"
    if ":" in raw:
        return f"YAML 1.1 reads {raw} as the base-60 number {shown}; quote it or write the decimal number"
    if "_" in raw:
        return f"YAML 1.1 reads {raw} as {shown}, ignoring the underscores; write {shown}"
    return ""


def _float_spelling(raw: str) -> str:
    """How to write the number so YAML 1.1 reads it as one: a dot and a signed exponent, or plain digits."""
    try:
        number = float(raw.replace("_", ""))
    except ValueError:
        return "it with a dot and a signed exponent, like 1.0e+3"
    if not math.isfinite(number):
        return "a number below about 1.8e308"
    mantissa, _, exponent = f"{number:e}".partition("e")
    mantissa = mantissa.rstrip("0")
    if mantissa.endswith("."):
        mantissa += "0"
    spelled = f"{mantissa}e{exponent[0]}{int(exponent[1:])}"
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number)} or {spelled}"
    if "e" not in repr(number):
        return f"{number!r} or {spelled}"
    return spelled


def _number_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader whose composer reports aliases (and anchors nothing refers to) instead of sharing nodes."""

    def __init__(self, text, problems):
        super().__init__(text)
        self._problems = problems
        self._unused_anchors: dict = {}

    def compose_node(self, parent, index):
        event = self.peek_event()
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            # One problem per use, naming the anchor; the anchor itself is then not a second problem.
            self._unused_anchors.pop(event.anchor, None)
            self._problems.append(
                YamlProblem(
                    mark.line + 1,
                    mark.column + 1,
                    f"alias *{event.anchor}: anchors and aliases are not allowed in rule files; write the value out",
                )
            )
            # An empty value instead of the shared node: nested aliases ("billion laughs")
            # must not expand when the document is walked.
            self.get_event()
            return yaml.ScalarNode(_ALIAS_TAG, "", event.start_mark, event.end_mark)  # type: ignore[arg-type]
        if getattr(event, "anchor", None) is not None:
            self._unused_anchors[event.anchor] = mark
        return super().compose_node(parent, index)

    def get_single_node(self):
        node = super().get_single_node()
        for anchor, mark in self._unused_anchors.items():
            self._problems.append(
                YamlProblem(
                    mark.line + 1,
                    mark.column + 1,
                    f"anchor &{anchor}: anchors and aliases are not allowed in rule files; remove it",
                )
            )
        return node


def _convert(loader, node, path, spots, problems, key_spot):
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    key_line, key_col = key_spot or (0, 0)
    if isinstance(node, yaml.ScalarNode) and node.tag == _ALIAS_TAG:
        spots[path] = Spot(line, col, None, False, key_line, key_col, alias=True)
        return None
    if isinstance(node, yaml.ScalarNode):
        plain = node.style is None
        spots[path] = Spot(line, col, node.value, plain, key_line, key_col)
        return _scalar(loader, node, problems)
    spots[path] = Spot(line, col, None, True, key_line, key_col)
    if isinstance(node, yaml.SequenceNode):
        _check_tag(node, _TAG + "seq", problems)
        return [_convert(loader, item, path + (i,), spots, problems, None) for i, item in enumerate(node.value)]
    _check_tag(node, _TAG + "map", problems)
    result: dict = {}
    first_seen: dict = {}
    for key_node, value_node in node.value:
        k_line, k_col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
        if not isinstance(key_node, yaml.ScalarNode):
            problems.append(YamlProblem(k_line, k_col, "keys must be plain text, not a list or mapping"))
            continue
        key = key_node.value
        if key in first_seen:
            problems.append(YamlProblem(k_line, k_col, f'duplicate key "{key}" (first at line {first_seen[key]})'))
            continue
        first_seen[key] = k_line
        result[key] = _convert(loader, value_node, path + (key,), spots, problems, (k_line, k_col))
    return result


def _scalar(loader, node, problems):
    if node.tag not in _PLAIN_TAGS:
        _check_tag(node, _TAG + "str", problems)
        return node.value
    if node.tag == _TAG + "timestamp":
        # A date is not a type rules use; keep the text so the schema judges it as text.
        return node.value
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, OverflowError):
        # An integer of thousands of digits (beyond Python's conversion limit): no float holds
        # it either, so it is infinite to whatever checks the value, which quotes the text.
        return -math.inf if node.value.lstrip().startswith("-") else math.inf


def _check_tag(node, expected, problems):
    if node.tag != expected and node.tag not in _PLAIN_TAGS:
        mark = node.start_mark
        problems.append(YamlProblem(mark.line + 1, mark.column + 1, f'tag "{node.tag}" is not supported in rule files'))


def _reader_problem(text: str, err) -> YamlProblem:
    """A control character the YAML reader refuses, at its line and column."""
    position = max(0, min(err.position, len(text)))
    line = text.count("\n", 0, position) + 1
    col = position - (text.rfind("\n", 0, position) + 1) + 1
    return YamlProblem(line, col, f"invalid YAML: control character U+{err.character:04X} is not allowed")


def _syntax_message(err: yaml.MarkedYAMLError) -> str:
    if err.problem and "'\\t'" in err.problem:
        return "invalid YAML: a tab character where indentation is expected; indent with spaces"
    if err.context and err.context.startswith("expected a single document"):
        return "invalid YAML: a second document (after ---); a rule file holds one document"
    message = "invalid YAML: " + _lower_first(err.problem or err.context or "cannot parse")
    mark, where = err.context_mark, err.problem_mark
    if err.problem and err.context and mark and (not where or mark.line != where.line):
        # "while parsing a flow sequence" alone does not say which one; point at its start.
        message += f" ({err.context} that starts at line {mark.line + 1}, column {mark.column + 1})"
    elif err.problem and err.context:
        message += f" ({err.context})"
    return message


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def unknown_key(key: str, allowed, hints: dict | None = None) -> str:
    """The one wording for a key that is not allowed, in rule files, rule tests and scenarios:
    `unknown key "x"; did you mean y?` when one is close (or a known confusion in `hints`),
    else the list of known keys."""
    allowed = list(allowed)
    hint = (hints or {}).get(key)
    if hint and any(part in allowed for part in hint.split(" or ")):
        return f'unknown key "{key}"; did you mean {hint}?'
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f'unknown key "{key}"; did you mean {close[0]}?'
    return f'unknown key "{key}"; known keys: {", ".join(allowed)}'
