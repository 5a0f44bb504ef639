"""The live testbed: fake inference servers, real gunicorn sidecars, real HAProxy, real requests.

For one scenario and one policy it starts, on 127.0.0.1 only: one fake server per pod
(`llm-healthcheck fake-server --scenario ... --rate 0`, so the pod serves only the
testbed's requests), one sidecar per pod (`llm-healthcheck serve` scraping that fake
server; none for policy `none`), HAProxy health-checking the sidecars, and replays the
scenario's planned requests (exporter.sim.workload) open-loop against HAProxy's
frontends. A monitor samples every sidecar's /health and HAProxy's view of every server
five times a second, which is what the CI test and the flips/unready figures read; with
the agent-check it also reads each sidecar's /load, the score HAProxy's weights come from.

Every child is started with a parent-death signal and stopped in `finally`, and the run
itself is bounded by the scenario's length plus one request timeout: nothing outlives it.
"""

import ctypes
import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from exporter.sim import haproxy
from exporter.sim.loadgen import Outcome, replay
from exporter.sim.scenario import RulesSpec, Scenario
from exporter.sim.workload import planned_requests, run_length

MONITOR_PERIOD_SECONDS = 0.2
START_TIMEOUT_SECONDS = 30.0


class TestbedError(RuntimeError):
    """A one-line reason the testbed could not run (a part did not start, a bad scenario)."""


@dataclass(frozen=True)
class Policy:
    label: str  # none | seed | the rule file as given
    rules: RulesSpec | None  # None: no sidecar, no health check


@dataclass
class Sample:
    t: float  # seconds since the load started
    pod: str
    sidecar: int  # /health status code; 0 when it did not answer
    lb_status: str  # HAProxy's status of the pod in its own region's backend
    lb_weight: int
    load: float | None = None  # the sidecar's /load at that moment (agent-check runs only; None: no answer)


@dataclass
class TestbedRun:
    __test__ = False  # a result, not a pytest class

    scenario: Scenario
    policy: Policy
    balance: str
    pods: list[haproxy.Pod]
    outcomes: list[Outcome]
    samples: list[Sample] = field(default_factory=list)
    final_stats: list[dict] = field(default_factory=list)
    config_text: str = ""
    duration: float = 0.0
    pids: list[int] = field(default_factory=list)  # every process the run started (all stopped at its end)
    # pod -> [(t, ready)]: each sidecar's own readiness changes, from its log (exact, where the
    # monitor's 5 Hz samples can miss a decision that lasted less than a sample period)
    transitions: dict = field(default_factory=dict)
    agent: bool = False  # HAProxy also had an agent-check on every sidecar (weights from the load score)
    run: int = 0  # which repeat of this policy (0 for the first); it picks the sidecars' start_delays


def check_scenario(scenario: Scenario) -> None:
    if scenario.spill != "none_ready":
        raise TestbedError("the testbed maps spill: none_ready onto HAProxy backup servers; proportional has no match")
    if scenario.no_ready_pod != "reject":
        raise TestbedError("the testbed needs gateway.no_ready_pod: reject (HAProxy answers 503 with no server up)")
    if scenario.replicas > 12:
        raise TestbedError(f"the testbed runs every pod on this machine; {scenario.replicas} pods is too many (<= 12)")


def sidecar_interval(scenario: Scenario, ruleset) -> float:
    """The evaluation interval the simulator uses for this scenario and rule set."""
    return scenario.sidecar_interval or ruleset.scrape.interval or 1.0


def run_testbed(
    scenario: Scenario,
    policy: Policy,
    ruleset,
    balance: str,
    timeout: float,
    workdir: Path,
    agent: bool = False,
    progress=None,
    run_index: int = 0,
) -> TestbedRun:
    """One policy's run; blocks for about the scenario's duration plus the drain of late requests.

    `run_index` draws the sidecars' start delays (exporter.sim.testbed.start_delays): each
    repeat of a policy is another draw of when the pods evaluate."""
    check_scenario(scenario)
    binary = haproxy.haproxy_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen] = []
    logs: list = []
    sockdir = None
    try:
        delays = start_delays(scenario, policy, ruleset, run_index)
        pods = _start_pods(scenario, policy, ruleset, workdir, children, logs, agent, delays)
        fronts = [_free_port() for _ in scenario.regions]
        # A short path of its own: a unix socket path must fit in 108 bytes, --out may not.
        sockdir = tempfile.mkdtemp(prefix="llm-hc-haproxy-")
        sock = os.path.join(sockdir, "stats.sock")
        text = haproxy.render_config(scenario, pods, fronts, sock, balance, timeout)
        cfg = workdir / "haproxy.cfg"
        cfg.write_text(text + "\n")
        checked = subprocess.run([binary, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True, timeout=20)
        if checked.returncode != 0:
            first = (checked.stderr or checked.stdout).strip().splitlines()[:1]
            raise TestbedError(f"haproxy refused the generated config {cfg}: {' '.join(first)}")
        children.append(_spawn([binary, "-db", "-f", str(cfg)], workdir / "haproxy.log", logs))
        _wait(lambda: os.path.exists(sock) and all(_connects(p) for p in fronts), "haproxy to listen", children)

        run = TestbedRun(
            scenario,
            policy,
            balance,
            pods,
            [],
            agent=agent,
            config_text=text,
            pids=[p.pid for p in children],
            run=run_index,
        )
        planned = planned_requests(scenario)
        started_at: list = []
        stop = threading.Event()
        monitor = threading.Thread(target=_monitor, args=(run, sock, started_at, stop), daemon=True)
        monitor.start()
        began = time.monotonic()
        try:
            run.outcomes = replay(planned, fronts, scenario.engine, timeout, started_at)
        finally:
            stop.set()
            monitor.join(timeout=5)
        run.duration = time.monotonic() - began
        zero_wall = time.time() - (time.monotonic() - started_at[0])
        run.transitions = {
            pod.name: _readiness_changes(workdir / f"{pod.name}.sidecar.log", zero_wall)
            for pod in pods
            if pod.check_port is not None
        }
        try:
            run.final_stats = haproxy.server_stats(sock)
        except OSError:
            run.final_stats = []
        return run
    finally:
        _stop_all(children)
        for handle in logs:
            handle.close()
        if sockdir is not None:
            shutil.rmtree(sockdir, ignore_errors=True)


def start_delays(scenario: Scenario, policy: Policy, ruleset, run_index: int) -> list[float]:
    """Seconds to wait before starting each pod's sidecar, one draw per (scenario seed, policy, run).

    Started back to back, the sidecars evaluate within milliseconds of each other, and HAProxy
    spreads its first checks the same way at every start: every run would be the same draw of
    each pod's lag from a decision to the next check, a draw the simulator (whose pods start
    independently, as Kubernetes pods do) makes only now and then. A delay of up to one
    evaluation interval before each sidecar makes each run an independent draw."""
    if policy.rules is None:
        return []
    rng = random.Random(f"{scenario.seed}:testbed-start:{policy.label}:{run_index}")
    interval = sidecar_interval(scenario, ruleset)
    return [rng.uniform(0, interval) for _ in range(scenario.replicas)]


def _start_pods(scenario, policy, ruleset, workdir, children, logs, agent, delays) -> list[haproxy.Pod]:
    pods = []
    for r, region in enumerate(scenario.regions):
        for k in range(region.replicas):
            name = f"{region.name}-{k + 1}"
            port = _free_port()
            cmd = [sys.executable, "-m", "exporter", "fake-server", "--scenario", scenario.file]
            cmd += ["--region", region.name, "--port", str(port), "--rate", "0", "--name", name]
            children.append(_spawn(cmd, workdir / f"{name}.fake-server.log", logs))
            pods.append((name, r, port))
    for name, _, port in pods:
        _wait(lambda port=port: _http_status(port, "/state") == 200, f"fake server {name}", children)
    if policy.rules is None:
        return [haproxy.Pod(name, r, port, None) for name, r, port in pods]
    interval = sidecar_interval(scenario, ruleset)
    out = []
    for (name, r, port), delay in zip(pods, delays):
        time.sleep(delay)  # a different evaluation phase for each pod (start_delays)
        health = _free_port()
        agent_port = _free_port() if agent else None
        env = _sidecar_env(policy.rules, port, health, interval, agent_port)
        cmd = [sys.executable, "-m", "exporter", "serve"]
        children.append(_spawn(cmd, workdir / f"{name}.sidecar.log", logs, env))
        out.append(haproxy.Pod(name, r, port, health, agent_port))
    for pod in out:
        # Ready before the load starts, as the simulator's pods are: a started pod has served a while.
        _wait(lambda pod=pod: _http_status(pod.check_port, "/health") == 200, f"sidecar {pod.name} ready", children)
    return out


def _sidecar_env(rules: RulesSpec, upstream: int, port: int, interval: float, agent_port: int | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS")}
    env.update(
        METRICS_ENDPOINT=f"http://127.0.0.1:{upstream}/metrics",
        APP_PORT=str(port),
        BIND_HOST="127.0.0.1",
        SCRAPE_INTERVAL=f"{interval:g}s",
        SCRAPE_TIMEOUT=f"{min(interval * 0.8, 2.0):g}s",
        SHUTDOWN_DRAIN_SECONDS="0",
        LOG_LEVEL="info",  # its "readiness -> ..." lines are the exact transition times
    )
    for name in ("RULES_PATH", "METRIC_TO_CHECK", "METRIC_THRESHOLD", "METRICS_THRESHOLD"):
        env.pop(name, None)
    if rules.files:
        env["RULES_PATH"] = rules.files[0]
    else:
        env.update(METRIC_TO_CHECK=rules.metric, METRIC_THRESHOLD=f"{rules.threshold:g}")
    if agent_port is not None:
        env["AGENT_PORT"] = str(agent_port)
    return env


def _monitor(run: TestbedRun, sock: str, started_at: list, stop: threading.Event) -> None:
    while not started_at and not stop.wait(0.01):
        pass
    zero = started_at[0] if started_at else time.monotonic()
    home = {pod.name: f"be_{run.scenario.regions[pod.region].name}" for pod in run.pods}
    while not stop.is_set():
        tick = time.monotonic()
        try:
            rows = {row["svname"]: row for row in haproxy.server_stats(sock) if row["pxname"] == home[row["svname"]]}
        except (OSError, KeyError):
            rows = {}
        for pod in run.pods:
            code = _http_status(pod.check_port, "/health", 1.0) if pod.check_port else 200
            load = _load(pod.check_port) if pod.agent_port else None
            row = rows.get(pod.name, {})
            weight = int(row.get("weight") or 0)
            run.samples.append(Sample(tick - zero, pod.name, code, row.get("status", "?"), weight, load))
        stop.wait(max(0.0, MONITOR_PERIOD_SECONDS - (time.monotonic() - tick)))


def _load(port: int) -> float | None:
    """The sidecar's published load score (its /load page: one sample), None without an answer."""
    body = _http_body(port, "/load", 1.0)
    for line in (body or "").splitlines():
        if line.startswith("llm_healthcheck_load "):
            try:
                return float(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def _readiness_changes(log_path: Path, zero_wall: float) -> list[tuple[float, bool]]:
    """(seconds since the load's zero, ready) for each `readiness -> ...` line of a sidecar log."""
    from datetime import datetime

    out = []
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if " llm_healthcheck: readiness -> " not in line:
            continue
        stamp, _, rest = line.partition(" INFO ")
        try:
            when = datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            continue
        out.append((when - zero_wall, rest.split("readiness -> ", 1)[1].startswith("ready")))
    return out


# ---- processes ----------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child: SIGTERM when the testbed process dies, so no part outlives a killed run."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _spawn(cmd: list[str], log_path: Path, logs: list, env: dict | None = None) -> subprocess.Popen:
    handle = open(log_path, "w")  # noqa: SIM115  (closed by run_testbed after the child stops)
    logs.append(handle)
    return subprocess.Popen(
        cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent, start_new_session=True
    )


def _stop_all(children: list[subprocess.Popen]) -> None:
    for proc in children:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in children:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait(predicate, what: str, children: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for proc in children:
            if proc.poll() is not None:
                raise TestbedError(
                    f"a part exited with {proc.returncode} while waiting for {what}: {' '.join(proc.args)}"
                )
        if predicate():
            return
        time.sleep(0.1)
    raise TestbedError(f"timed out after {START_TIMEOUT_SECONDS:g}s waiting for {what}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_status(port: int, path: str, timeout: float = 2.0) -> int:
    return _http_get(port, path, timeout)[0]


def _http_body(port: int, path: str, timeout: float = 2.0) -> str | None:
    """The body of a 200 answer; None for any other answer or none."""
    status, body = _http_get(port, path, timeout)
    return body.decode("utf-8", "replace") if status == 200 else None


def _http_get(port: int, path: str, timeout: float) -> tuple[int, bytes]:
    """(status, body) of GET path on 127.0.0.1:port; (0, b"") when it did not answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


__all__ = ["Policy", "TestbedError", "TestbedRun", "run_testbed", "run_length"]
