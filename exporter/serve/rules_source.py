"""Where the sidecar's rules come from: a file or directory (reloadable, ConfigMap-safe) or
the seed's env vars."""

import hashlib
import os

from exporter.config.errors import ConfigError, Problem
from exporter.config.settings import Settings
from exporter.rules import files as rule_files
from exporter.rules.model import RuleSet


class RulesSource:
    """Loads the rules, and tells by content whether they changed since."""

    LOAD_ATTEMPTS = 5

    def __init__(self, settings: Settings):
        self.settings = settings
        self.path = settings.rules_path

    def load(self) -> tuple[RuleSet, str | None]:
        """The rules and the fingerprint of exactly the content they were read from.

        Files are read one after another, so a ConfigMap swap in the middle could yield a mix
        of two versions; the version is taken before and after (see _version), and a read that
        straddled a change is thrown away and repeated. A ConfigError carries the fingerprint
        of the broken content (None when the files never held still), so the same broken
        content is not retried on every poll but a newer version is.
        """
        from exporter.rules import loader as ruleset

        if self.path is None:
            return ruleset.seed_ruleset(self.settings.metric_to_check, self.settings.metric_threshold), None
        for _ in range(self.LOAD_ATTEMPTS):
            before = self._version()
            try:
                loaded = ruleset.load_rules([self.path])
            except ConfigError as err:
                if self._version() == before:
                    err.fingerprint = before[1]
                    raise
                continue
            if self._version() == before:
                return loaded, before[1]
        err = ConfigError(
            [
                Problem(
                    self.path,
                    message=f"rule files changed while being read, "
                    f"{self.LOAD_ATTEMPTS} times in a row; retrying at the next poll",
                )
            ]
        )
        err.fingerprint = None
        raise err

    def _version(self) -> tuple:
        """What must not change during a read: the content, and for a ConfigMap volume the
        `..data` link, whose target is a new directory name on every update, so a swap and a
        swap back during one read (same content before and after) is still noticed."""
        try:
            link = os.readlink(os.path.join(self.path, "..data"))
        except OSError:
            link = None
        return link, self.fingerprint()

    def fingerprint(self) -> str | None:
        """Content hash of the resolved files; works across Kubernetes' ..data symlink swap."""
        if self.path is None:
            return None
        from exporter.rules import loader as ruleset

        try:
            return rule_files.fingerprint(ruleset.resolve_rule_files(self.path))
        except (ConfigError, OSError) as err:
            return hashlib.sha256(f"unreadable: {err}".encode()).hexdigest()
