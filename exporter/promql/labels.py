"""Label-set helpers shared by the operators. A label set is a tuple of (name, value)
pairs sorted by name, exactly as exporter.core.history.Labels."""

NAME = "__name__"


def drop_name(labels: tuple) -> tuple:
    for k, _ in labels:
        if k == NAME:
            return tuple(p for p in labels if p[0] != NAME)
    return labels


def get(labels: tuple, name: str) -> str:
    for k, v in labels:
        if k == name:
            return v
    return ""


def keep_only(labels: tuple, names: frozenset) -> tuple:
    return tuple(p for p in labels if p[0] in names)


def without(labels: tuple, names: frozenset) -> tuple:
    return tuple(p for p in labels if p[0] not in names)


def with_label(labels: tuple, name: str, value: str) -> tuple:
    """Set (or, with an empty value, delete) one label, keeping the tuple sorted."""
    rest = [p for p in labels if p[0] != name]
    if value:
        rest.append((name, value))
        rest.sort()
    return tuple(rest)


def show(labels: tuple) -> str:
    """Prometheus' labels.String(): {__name__="x", a="b"}."""
    return "{" + ", ".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def has_duplicates(vector: list) -> bool:
    if len(vector) < 2:
        return False
    seen = set()
    for labels, _ in vector:
        if labels in seen:
            return True
        seen.add(labels)
    return False
