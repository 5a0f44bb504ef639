"""Reads a scenario file into a Scenario, collecting a problem with its position for every
mistake (one pass, every problem at once, as rule files are checked)."""

import math
from dataclasses import replace
from pathlib import Path

from exporter.config.errors import Problem
from exporter.sim.model import Lengths, ModelConfig
from exporter.sim.pages import ENGINES
from exporter.sim.profiles import ProfileError, build_profile
from exporter.sim.scenario import (
    _LENGTH_KEYS,
    _MODEL_NUMBERS,
    _PROBE_KEYS,
    _TOP_KEYS,
    BALANCES,
    GATEWAY_KEYS,
    NO_READY,
    SPILLS,
    ProbeSpec,
    RegionSpec,
    RulesSpec,
    Scenario,
)


class Reader:
    def __init__(self, file: str, spots: dict):
        self.file = file
        self.spots = spots
        self.problems: list[Problem] = []

    def fail(self, where: tuple, message: str, at_key: bool = False) -> None:
        spot = self.spots.get(where)
        line, col = (spot.line, spot.col) if spot else (0, 0)
        if spot and (at_key or spot.line == 0) and spot.key_line:
            line, col = spot.key_line, spot.key_col
        name = _dotted(where)
        self.problems.append(Problem(self.file, line, col, None, f"{name}: {message}" if name else message))

    # ---- pieces -----------------------------------------------------------------

    def mapping(self, value, where: tuple, allowed) -> dict:
        if not isinstance(value, dict):
            self.fail(where, f"must be a mapping, got {_shown(value)}")
            return {}
        for key in value:
            if key not in allowed:
                self.fail(where + (key,), f"unknown key; allowed: {', '.join(allowed)}", at_key=True)
        return value

    def number(self, value, where, minimum=None, above=None, integer=False, default=None):
        if value is None:
            return default
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if ok and integer and not float(value).is_integer():
            ok = False
        if ok and minimum is not None and value < minimum:
            ok = False
        if ok and above is not None and value <= above:
            ok = False
        if not ok:
            want = "a whole number" if integer else "a number"
            if minimum is not None:
                want += f" >= {minimum:g}"
            if above is not None:
                want += f" > {above:g}"
            self.fail(where, f"must be {want}, got {_shown(value)}")
            return default
        return int(value) if integer else float(value)

    def duration(self, value, where, default=None, positive=True):
        from exporter.config.durations import parse_duration

        if value is None:
            return default
        if isinstance(value, str):
            try:
                seconds = parse_duration(value)
            except ValueError as err:
                self.fail(where, str(err))
                return default
        else:
            seconds = self.number(value, where, minimum=0)
            if seconds is None:
                return default
        if positive and seconds <= 0:
            self.fail(where, f"must be above 0, got {_shown(value)}")
            return default
        return seconds

    def choice(self, value, where, options, default):
        if value is None:
            return default
        if value not in options:
            self.fail(where, f"must be one of {', '.join(options)}, got {_shown(value)}")
            return default
        return value

    def text(self, value, where, default=""):
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            self.fail(where, f"must be text, got {_shown(value)}")
            return default
        return value

    # ---- sections -----------------------------------------------------------------

    def scenario(self, data, path: Path) -> Scenario:
        data = self.mapping(data, (), _TOP_KEYS)
        name = self.text(data.get("name"), ("name",), path.stem)
        duration = self.duration(data.get("duration"), ("duration",), 3600.0)
        step = self.duration(data.get("step"), ("step",), 1.0)
        if duration and step and step > duration:
            self.fail(("step",), f"must not be longer than duration ({duration:g}s)")
        seed = self.number(data.get("seed"), ("seed",), integer=True, default=1)
        engine = self.choice(data.get("engine"), ("engine",), ENGINES, "tgi")
        rules = self.rules(data.get("rules"), ("rules",), path.parent)
        probe = self.probe(data.get("probe", {}), ("probe",))
        sidecar = self.mapping(data.get("sidecar", {}), ("sidecar",), ("interval", "latency"))
        interval = self.duration(sidecar.get("interval"), ("sidecar", "interval"))
        latency = self.duration(sidecar.get("latency"), ("sidecar", "latency"), 0.002, positive=False)
        gateway = self.mapping(data.get("gateway", {}), ("gateway",), GATEWAY_KEYS)
        balance = self.choice(gateway.get("balance"), ("gateway", "balance"), BALANCES, "round_robin")
        no_ready = self.choice(gateway.get("no_ready_pod"), ("gateway", "no_ready_pod"), NO_READY, "reject")
        spill = self.choice(gateway.get("spill"), ("gateway", "spill"), SPILLS, "none_ready")
        factor = self.number(
            gateway.get("overprovisioning_factor"), ("gateway", "overprovisioning_factor"), above=0, default=1.4
        )
        max_utilization = self.number(
            gateway.get("max_utilization"), ("gateway", "max_utilization"), above=0, default=0.8
        )
        if max_utilization > 1:
            self.fail(("gateway", "max_utilization"), f"must be a number > 0 and <= 1, got {max_utilization:g}")
        refresh = self.duration(gateway.get("refresh"), ("gateway", "refresh"), 5.0)
        base_model = self.model(data.get("model", {}), ("model",), ModelConfig())
        regions = self.regions(data.get("regions"), base_model, path.parent)
        return Scenario(
            name,
            str(path),
            self.text(data.get("description"), ("description",)),
            duration or 3600.0,
            step or 1.0,
            seed,
            engine,
            rules,
            probe,
            interval,
            latency,
            balance,
            no_ready,
            spill,
            factor,
            tuple(regions),
            max_utilization,
            refresh,
        )

    def rules(self, value, where, base: Path) -> RulesSpec:
        if value is None:
            return RulesSpec()
        if isinstance(value, dict):
            data = self.mapping(value, where, ("metric", "threshold"))
            metric = self.text(data.get("metric"), where + ("metric",), "tgi_queue_size")
            threshold = self.number(data.get("threshold"), where + ("threshold",), default=15.0)
            return RulesSpec((), metric, threshold)
        items = value if isinstance(value, list) else [value]
        files = []
        for i, item in enumerate(items):
            spot = where + (i,) if isinstance(value, list) else where
            if not isinstance(item, str) or not item:
                self.fail(spot, f"must be a rule file path or {{metric, threshold}}, got {_shown(item)}")
                continue
            file = Path(item) if Path(item).is_absolute() else base / item
            if not file.exists():
                self.fail(spot, f"rule file {item!r} not found (paths are relative to the scenario file)")
                continue
            files.append(str(file))
        return RulesSpec(tuple(files))

    def probe(self, value, where) -> ProbeSpec:
        data = self.mapping(value, where, tuple(_PROBE_KEYS))
        values = {}
        for key, (attr, default) in _PROBE_KEYS.items():
            integer = isinstance(default, int)
            minimum = 1 if integer else 0
            got = self.number(data.get(key), where + (key,), minimum=minimum, integer=integer, default=default)
            values[attr] = got
        if values["period"] <= 0:
            self.fail(where + ("periodSeconds",), "must be above 0")
            values["period"] = 10.0
        return ProbeSpec(**values)

    def model(self, value, where, base: ModelConfig) -> ModelConfig:
        data = self.mapping(value, where, tuple(_MODEL_NUMBERS) + ("prompt_tokens", "output_tokens", "model_name"))
        changes = {}
        for key, kind in _MODEL_NUMBERS.items():
            if key in data:
                got = self.number(data[key], where + (key,), minimum=1 if kind is int else 0, integer=kind is int)
                if got is not None:
                    changes[key] = got
        if "model_name" in data:
            changes["model_name"] = self.text(data["model_name"], where + ("model_name",), base.model_name)
        for key in ("prompt_tokens", "output_tokens"):
            if key in data:
                lengths = self.lengths(data[key], where + (key,), getattr(base, key))
                if lengths is not None:
                    changes[key] = lengths
        try:
            return replace(base, **changes)
        except ValueError as err:
            self.fail(where, str(err))
            return base

    def lengths(self, value, where, base: Lengths) -> Lengths | None:
        data = self.mapping(value, where, _LENGTH_KEYS)
        changes = {}
        if "kind" in data:
            changes["kind"] = self.choice(
                data["kind"], where + ("kind",), ("fixed", "uniform", "exponential", "lognormal"), base.kind
            )
        for key in ("mean", "sigma"):
            if key in data:
                got = self.number(data[key], where + (key,), minimum=0)
                if got is not None:
                    changes[key] = got
        for key in ("low", "high"):
            if key in data:
                got = self.number(data[key], where + (key,), minimum=1, integer=True)
                if got is not None:
                    changes[key] = got
        try:
            return replace(base, **changes)
        except ValueError as err:
            self.fail(where, str(err))
            return None

    def regions(self, value, base_model: ModelConfig, base_dir: Path) -> list[RegionSpec]:
        where = ("regions",)
        if not isinstance(value, list) or not value:
            self.fail(
                where if value is not None else (),
                "regions: must be a non-empty list of regions"
                if value is None
                else f"must be a non-empty list, got {_shown(value)}",
            )
            return []
        raw = []
        for i, item in enumerate(value):
            here = where + (i,)
            data = self.mapping(item, here, ("name", "replicas", "load", "spill_to", "model"))
            name = self.text(data.get("name"), here + ("name",), f"region-{i + 1}")
            replicas = self.number(data.get("replicas"), here + ("replicas",), minimum=1, integer=True, default=1)
            if "load" not in data:
                self.fail(here, "needs load: (a rate profile such as {shape: constant, rate: 2})")
                load = None
            else:
                try:
                    load = build_profile(data["load"], base_dir)
                except ProfileError as err:
                    self.fail(here + ("load",), str(err))
                    load = None
            model = self.model(data.get("model", {}), here + ("model",), base_model)
            raw.append((here, name, replicas, load, data.get("spill_to"), model))
        names = [r[1] for r in raw]
        for here, name, *_ in raw:
            if names.count(name) > 1:
                self.fail(here + ("name",), f"region name {name!r} is used more than once")
        regions = []
        for here, name, replicas, load, spill, model in raw:
            if spill is None:
                order = tuple(n for n in names if n != name)
            elif not isinstance(spill, list) or any(not isinstance(s, str) for s in spill):
                self.fail(here + ("spill_to",), f"must be a list of region names, got {_shown(spill)}")
                order = ()
            else:
                for j, other in enumerate(spill):
                    if other not in names or other == name:
                        self.fail(here + ("spill_to", j), f"{other!r} is not another region of this scenario")
                order = tuple(s for s in spill if s in names and s != name)
            regions.append(RegionSpec(name, replicas, load or (lambda t: 0.0), order, model))
        return regions


def _dotted(where: tuple) -> str:
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shown(value) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)
