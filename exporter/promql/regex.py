"""Translate Prometheus' (Go RE2) regex syntax into Python's `re`, where they differ.

Handled: inline flags in the middle of a pattern (`a(?i)b`, which RE2 applies to the
rest of the enclosing group), POSIX classes (`[[:alpha:]]`), `\\z`, `\\Q...\\E` and
`(?<name>...)`. Anything RE2 has and Python lacks (`\\pL`, the `U` flag) is an error
rather than a pattern that silently matches something else.
"""

import re

_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_FLAGS = re.compile(r"\(\?([a-zA-Z]*(?:-[a-zA-Z]+)?)\)")


class RegexSyntaxError(ValueError):
    pass


def to_python(pattern: str) -> str:
    alternatives, _ = _alternatives(pattern, 0, top=True)
    return "|".join(alternatives)


def _alternatives(p: str, i: int, top: bool) -> tuple[list[str], int]:
    """Alternatives of the group starting at i, and the index just past its ")"."""
    alternatives: list[str] = []
    current: list[str] = []
    n = len(p)
    while i < n:
        ch = p[i]
        if ch == "\\":
            piece, i = _escape(p, i)
            current.append(piece)
        elif ch == "[":
            piece, i = _char_class(p, i)
            current.append(piece)
        elif ch == "|":
            alternatives.append("".join(current))
            current = []
            i += 1
        elif ch == ")":
            if top:
                raise RegexSyntaxError(f"unexpected ) at position {i}")
            alternatives.append("".join(current))
            return alternatives, i + 1
        elif ch == "(" and _FLAGS.match(p, i):
            # RE2 applies mid-pattern flags to the rest of the enclosing group, every
            # following alternative included; Python needs them scoped explicitly.
            flag_match = _FLAGS.match(p, i)
            assert flag_match is not None  # matched in the elif above
            flags = flag_match.group(1)
            if "U" in flags:
                raise RegexSyntaxError("the U (ungreedy) flag is not supported")
            rest, i = _alternatives(p, flag_match.end(), top)

            def wrap(text: str, flags: str = flags) -> str:
                return f"(?{flags}:{text})" if flags and text else text

            alternatives.append("".join(current) + wrap(rest[0]))
            alternatives.extend(wrap(a) for a in rest[1:])
            return alternatives, i
        elif ch == "(":
            head, i = _group_head(p, i)
            inner, i = _alternatives(p, i, top=False)
            current.append(head + "|".join(inner) + ")")
        else:
            current.append(ch)
            i += 1
    if not top:
        raise RegexSyntaxError("missing closing )")
    alternatives.append("".join(current))
    return alternatives, i


def _group_head(p: str, i: int) -> tuple[str, int]:
    if p.startswith("(?P<", i):
        end = p.index(">", i)
        return p[i : end + 1], end + 1
    if p.startswith("(?<", i) and not p.startswith("(?<=", i) and not p.startswith("(?<!", i):
        end = p.index(">", i)
        return "(?P<" + p[i + 3 : end + 1], end + 1
    if p.startswith("(?:", i):
        return "(?:", i + 3
    scoped = re.match(r"\(\?([a-zA-Z]*(?:-[a-zA-Z]+)?):", p[i:])
    if scoped:
        if "U" in scoped.group(1):
            raise RegexSyntaxError("the U (ungreedy) flag is not supported")
        return scoped.group(0), i + scoped.end()
    if p.startswith("(?", i):
        raise RegexSyntaxError(f"unsupported group syntax at position {i}")
    return "(", i + 1


def _escape(p: str, i: int) -> tuple[str, int]:
    if i + 1 >= len(p):
        raise RegexSyntaxError("trailing backslash")
    nxt = p[i + 1]
    if nxt == "z":
        return r"\Z", i + 2
    if nxt == "Q":
        end = p.find(r"\E", i + 2)
        literal = p[i + 2 :] if end < 0 else p[i + 2 : end]
        return re.escape(literal), (len(p) if end < 0 else end + 2)
    if nxt in "pP":
        raise RegexSyntaxError("unicode classes (\\p) are not supported")
    return p[i : i + 2], i + 2


def _char_class(p: str, i: int) -> tuple[str, int]:
    out = ["["]
    j = i + 1
    if j < len(p) and p[j] == "^":
        out.append("^")
        j += 1
    if j < len(p) and p[j] == "]":
        out.append("\\]")  # a leading ] is literal in RE2
        j += 1
    while j < len(p):
        ch = p[j]
        if ch == "\\":
            piece, j = _escape(p, j)
            out.append(piece)
            continue
        if ch == "[" and p.startswith("[:", j):
            end = p.find(":]", j + 2)
            name = p[j + 2 : end] if end > 0 else ""
            negated = name.startswith("^")
            body = _POSIX.get(name.lstrip("^"))
            if body is None or negated:
                raise RegexSyntaxError(f"unsupported character class [:{name}:]")
            out.append(body)
            j = end + 2
            continue
        if ch == "[":
            out.append("\\[")  # Python warns about nested sets; RE2 reads it literally
            j += 1
            continue
        out.append(ch)
        j += 1
        if ch == "]":
            return "".join(out), j
    raise RegexSyntaxError("missing closing ]")
