"""How to scrape the inference server: the `scrape:` block of a rule file, env vars and flags
all fill this one shape (settings.effective_scrape merges them)."""

from dataclasses import dataclass

FAILURE_POLICIES = ("unready", "ready", "hold")
EMPTY_POLICIES = ("ready", "unready")


@dataclass(frozen=True)
class ScrapeConfig:
    """The optional `scrape:` block of a rule file. None means "not set here"."""

    endpoint: str | None = None
    interval: float | None = None
    timeout: float | None = None
    on_failure: str | None = None
    failure_threshold: int | None = None
    on_empty: str | None = None


def timeout_problem(timeout: float, interval: float, shown_timeout: str, shown_interval: str) -> str | None:
    """The one rule for the scrape timeout, in its one wording: it must end before the next
    scrape is due. Checked where a rule file sets both (with the file's position) and on the
    merged settings (env and flags over the file)."""
    if timeout >= interval:
        return f"timeout: {shown_timeout} must be less than interval ({shown_interval}), or scrapes would overlap"
    return None
