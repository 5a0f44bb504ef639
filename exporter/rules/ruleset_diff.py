"""What a reload changed, by rule name: so the log says it, not only a new hash."""

from exporter.rules.model import RuleSet


def diff(old: RuleSet, new: RuleSet) -> tuple[list[str], list[str], list[str]]:
    """(added, removed, changed) rule names; changed = same name, another definition."""
    before = {rule.name: rule.definition() for rule in old.rules}
    after = {rule.name: rule.definition() for rule in new.rules}
    added = [name for name in after if name not in before]
    removed = [name for name in before if name not in after]
    changed = [name for name in after if name in before and before[name] != after[name]]
    return added, removed, changed


def describe(old: RuleSet, new: RuleSet) -> str:
    added, removed, changed = diff(old, new)
    parts = [
        f"{label} {', '.join(names)}"
        for label, names in (("added", added), ("removed", removed), ("changed", changed))
        if names
    ]
    return "; ".join(parts) if parts else "no rule changed"
