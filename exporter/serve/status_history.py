"""The last minutes of each rule's decided value and state, for the status page's charts.

The scrape history (exporter.core.history) holds raw samples for range functions; what an
operator wants to see is what each rule made of them: its value and its state (ok, pending,
firing, recovering) cycle by cycle. That is recorded here, once per published decision, in a
bounded ring per rule: at most MAX_POINTS points over WINDOW_SECONDS, a cycle closer than
WINDOW_SECONDS / MAX_POINTS to the previous point is skipped unless the state changed, so a
fast scrape interval thins the ring instead of growing it. A rule that is no longer loaded is
forgotten; a rule whose definition changed on a reload starts a new ring (its old values were
judged against other thresholds), and so does every rule when the wall clock steps back.
"""

from collections import deque
from dataclasses import dataclass

WINDOW_SECONDS = 300.0
MAX_POINTS = 600


@dataclass(frozen=True)
class Point:
    time: float  # unix seconds of the cycle
    value: float | None  # None: no data (or the rule was not evaluated)
    state: str


class _Ring:
    __slots__ = ("definition", "points")

    def __init__(self, definition, max_points: int):
        self.definition = definition
        self.points: deque[Point] = deque(maxlen=max_points)


class RuleHistory:
    """Per rule name, the recent points; fed by one thread (the evaluator's), read by it too."""

    def __init__(self, window_seconds: float = WINDOW_SECONDS, max_points: int = MAX_POINTS):
        self.window = window_seconds
        self._step = window_seconds / max_points
        self._max_points = max_points
        self._rings: dict[str, _Ring] = {}

    def record(self, decision) -> None:
        now = decision.time
        seen = set()
        for status in decision.rules:
            rule = status.rule
            seen.add(rule.name)
            ring = self._rings.get(rule.name)
            if ring is None or ring.definition != rule.definition():
                ring = self._rings[rule.name] = _Ring(rule.definition(), self._max_points)
            points = ring.points
            if points:
                last = points[-1]
                if now < last.time:
                    points.clear()  # the wall clock stepped back: the old times no longer line up
                elif now - last.time < self._step and last.state == status.state:
                    continue
            points.append(Point(now, status.value, status.state))
            while points and points[0].time < now - self.window:
                points.popleft()
        for name in [name for name in self._rings if name not in seen]:
            del self._rings[name]

    def points(self, name: str) -> tuple[Point, ...]:
        ring = self._rings.get(name)
        return tuple(ring.points) if ring else ()


def state_spans(points, until: float) -> list[tuple[float, float, str]]:
    """(start, end, state) runs of the same state; the last run ends at `until`."""
    spans: list[tuple[float, float, str]] = []
    for point in points:
        if spans and spans[-1][2] == point.state:
            continue
        if spans:
            start, _, state = spans[-1]
            spans[-1] = (start, point.time, state)
        spans.append((point.time, until, point.state))
    return spans
