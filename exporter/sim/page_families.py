"""The machinery of a simulated /metrics page: metric families (name, type, HELP, label sets,
bucket bounds) that print exposition text the way each server's own library does (Rust's or
Python's number formatting) and hand the same values to the rule engine as samples."""

from collections.abc import Callable, Iterable

from exporter.sim.model import ServerModel

Labels = tuple[tuple[str, str], ...]


def rust_number(value: float) -> str:
    """TGI's exporter prints integral values without a decimal point."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def python_number(value: float) -> str:
    """prometheus_client's style: always a float, "1.0", "0.25", "+Inf"."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Family:
    """One metric family: static series keys and text prefixes, values read from the model."""

    def __init__(
        self, name: str, kind: str, help_text: str | None, visible: Callable[[ServerModel], bool] | None = None
    ):
        self.name = name
        self.visible = visible
        self.kind = kind
        self.help = help_text
        self.keys: list[Labels] = []  # sorted labels with __name__, one per line
        self.prefixes: list[str] = []  # "name{labels} "
        self.sample_names: set[str] = set()
        self.quantities: set[str] = set()  # model histograms this family reads
        self._getters: list[Callable[[ServerModel], Iterable[float]]] = []

    def add_line(self, sample_name: str, labels: list[tuple[str, str]]) -> None:
        key = tuple(sorted(dict(labels, __name__=sample_name).items()))
        body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
        self.keys.append(key)
        self.prefixes.append(f"{sample_name}{{{body}}} " if body else f"{sample_name} ")
        self.sample_names.add(sample_name)

    def add_getter(self, getter: Callable[[ServerModel], Iterable[float]]) -> None:
        self._getters.append(getter)

    def values(self, model: ServerModel) -> list[float]:
        out: list[float] = []
        for getter in self._getters:
            out.extend(getter(model))
        return out

    def header(self) -> str:
        head = f"# HELP {self.name} {self.help}\n" if self.help else ""
        return head + f"# TYPE {self.name} {self.kind}\n"


class Engine:
    def __init__(
        self,
        name: str,
        style: Callable[[float], str],
        blank_after_family: bool,
        sum_first: bool,
        le_first: bool,
        visible: Callable[[ServerModel], bool] = lambda m: True,
    ):
        self.name = name
        self.style = style
        self.families: list[Family] = []
        self.histograms: dict[str, list[float]] = {}  # quantity -> bounds the model must keep
        self._blank = blank_after_family
        self._sum_first = sum_first
        self._le_first = le_first
        self._visible = visible

    # ---- building -------------------------------------------------------------

    def scalar(self, name, kind, help_text, children, visible=None):
        """children: list of (labels, getter(model) -> float); visible(model) hides the family when false."""
        fam = Family(name, kind, help_text, visible)
        for labels, getter in children:
            fam.add_line(name, labels)
            fam.add_getter(lambda m, g=getter: (g(m),))
        self.families.append(fam)

    def histogram(self, name, help_text, children, bounds):
        """children: list of (labels, quantity); every child shares the bucket bounds."""
        fam = Family(name, "histogram", help_text)
        les = [self.style(b) for b in bounds] + ["+Inf"]
        for labels, quantity in children:
            self.histograms[quantity] = bounds
            fam.quantities.add(quantity)
            lines = []
            for le in les:
                lines.append((f"{name}_bucket", [("le", le)] + labels if self._le_first else labels + [("le", le)]))
            tail = [(f"{name}_count", labels)]
            if self._sum_first:
                lines = [(f"{name}_sum", labels)] + lines + tail
            else:
                lines = lines + tail + [(f"{name}_sum", labels)]
            for sample_name, line_labels in lines:
                fam.add_line(sample_name, line_labels)
            fam.add_getter(lambda m, q=quantity: histogram_values(m.hist[q], self._sum_first))
        self.families.append(fam)

    # ---- reading --------------------------------------------------------------

    def wanted_quantities(self, names: Iterable[str] | None) -> dict[str, list[float]]:
        """Histograms the model must keep to answer for these sample names (None: all)."""
        if names is None:
            return dict(self.histograms)
        names = set(names)
        wanted = {}
        for fam in self.families:
            if fam.kind == "histogram" and fam.sample_names & names:
                wanted.update({q: self.histograms[q] for q in fam.quantities})
        return wanted

    def families_for(self, names: Iterable[str] | None) -> list[Family]:
        if names is None:
            return list(self.families)
        names = set(names)
        return [fam for fam in self.families if fam.sample_names & names]

    def samples(self, model: ServerModel, families: list[Family] | None = None) -> list[tuple[Labels, float]] | None:
        """(labels, value) pairs with __name__ in the labels, for History.record; None while the
        server is down (its /metrics refuses connections, a failed scrape)."""
        if model.down:
            return None
        if not self._visible(model):
            return []
        out: list[tuple[Labels, float]] = []
        for fam in self.families if families is None else families:
            if fam.visible is None or fam.visible(model):
                out.extend(zip(fam.keys, fam.values(model)))
        return out

    def render(self, model: ServerModel) -> str:
        """The /metrics page in text format 0.0.4."""
        if not self._visible(model):
            return ""
        parts: list[str] = []
        style = self.style
        for fam in self.families:
            if fam.visible is not None and not fam.visible(model):
                continue
            parts.append(fam.header())
            parts.extend(f"{prefix}{style(value)}\n" for prefix, value in zip(fam.prefixes, fam.values(model)))
            if self._blank:
                parts.append("\n")
        return "".join(parts)


def histogram_values(h, sum_first: bool) -> list[float]:
    cumulative = h.cumulative()
    if sum_first:
        return [h.sum] + cumulative + [h.count]
    return cumulative + [h.count, h.sum]
