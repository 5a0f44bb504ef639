"""What the loop logs and counts about rules each cycle: every transition (pending included),
counted by (rule, state changed to) and logged with structured fields; and, after a fresh page,
the no-data warnings (see no_data_log)."""

import logging

from exporter.serve.log_fields import transition_fields
from exporter.serve.no_data_log import NoDataReporter

log = logging.getLogger("llm_healthcheck")


class RuleLogs:
    def __init__(self, transitions):
        self._transitions = transitions  # the evaluator's Counter: (rule, to) -> n
        self._no_data = NoDataReporter()

    def record(self, statuses, samples=None) -> None:
        """samples: the fresh page's samples, or None when the cycle evaluated nothing new."""
        if samples is not None:
            self._no_data.observe(statuses, samples)
        for status in statuses:
            if status.changed:
                self._transitions[(status.rule.name, status.state)] += 1
                log.info(
                    'rule "%s" %s -> %s: %s',
                    status.rule.name,
                    status.previous_state,
                    status.state,
                    status.reason,
                    extra=transition_fields(status),
                )
