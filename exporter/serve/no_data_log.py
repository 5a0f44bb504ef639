"""The warning that names what a rule with no data is missing, logged once per change.

A misspelt metric (`tgi_queue_sizee`) leaves its rule ok with no data forever. The gauge
`rule_no_data` says so to Prometheus; this says it to whoever reads the pod's logs: one
warning per rule naming the metric families it reads that are absent from the page, again
only when that list changes, and one line when data comes back. Nothing is repeated per cycle.
"""

import logging

from exporter.config.fleet_config import SERIES_PREFIX as FLEET_PREFIX

log = logging.getLogger("llm_healthcheck")


class NoDataReporter:
    def __init__(self):
        self._absent: dict[str, tuple[str, ...]] = {}  # rule name -> families absent when last logged

    def observe(self, statuses, samples) -> None:
        """After an evaluation of a fresh page: `samples` are the page's (labels, value) pairs."""
        on_page = None
        seen = set()
        for status in statuses:
            name = status.rule.name
            seen.add(name)
            if not status.no_data:
                if self._absent.pop(name, None) is not None:
                    log.info('rule "%s": has data again', name, extra={"rule": name, "reason": "data again"})
                continue
            if on_page is None:
                on_page = {value for labels, _ in samples for key, value in labels if key == "__name__"}
            wanted = status.rule.expr.metric_names or frozenset()
            absent = tuple(sorted(n for n in wanted - on_page if not n.startswith(FLEET_PREFIX)))
            if self._absent.get(name) == absent:
                continue
            self._absent[name] = absent
            if absent:
                message = f"no data: metric families absent from the page: {', '.join(absent)}"
            elif any(n.startswith(FLEET_PREFIX) for n in wanted):
                message = "no data: the fleet view has no series for it yet, or its selectors match none"
            else:
                message = "no data: every metric family it reads is on the page, but no series matches its selectors"
            log.warning(
                'rule "%s": %s (on_missing %s)',
                name,
                message,
                status.rule.on_missing,
                extra={"rule": name, "state": status.state, "reason": message, "absent": list(absent)},
            )
        for gone in set(self._absent) - seen:  # rules removed by a reload
            del self._absent[gone]
