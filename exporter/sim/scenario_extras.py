"""The scenario keys the decision panel reads: `faults:` (sick pods), `fleet:` (the simulated
fleet view's lag and guard) and `client_timeout:` (when a client gives up on a request).

    client_timeout: 60s      # no first token by then: the request counts as timed out (lost)
    fleet: {scrape_interval: 15s, query_interval: 15s, max_unready_fraction: 0.5}
    faults:
      - {region: us-east, pod: 2, at: 10m, for: 15m, kind: slow, factor: 0.3}
"""

from dataclasses import replace

from exporter.sim.faults import parse_faults
from exporter.sim.fleet import parse_fleet


def read_extras(reader, data: dict, scenario):
    """The scenario with its faults, fleet and client timeout; problems go to the reader."""
    faults = parse_faults(reader, data.get("faults"), {r.name: r.replicas for r in scenario.regions})
    fleet = parse_fleet(reader, data.get("fleet", {}))
    timeout = reader.duration(data.get("client_timeout"), ("client_timeout",), 60.0)
    return replace(scenario, faults=faults, fleet=fleet, client_timeout=timeout or 60.0)
