"""An open-loop load generator: each planned request is sent at its time, whether or not
earlier ones have finished, and waited for at most `timeout` seconds.

A closed loop (send the next when one returns) slows down exactly when the servers do and
hides the queueing a real user population causes; open loop is how traffic behaves.
Latency is measured from the planned send time, so any lateness of the generator itself
counts against the servers rather than vanishing (and is reported as `lag`).
"""

import asyncio
import time
from dataclasses import dataclass

from exporter.sim.workload import PlannedRequest

# Outcome statuses besides HTTP codes.
TIMEOUT = "timeout"  # no complete answer within the per-request timeout
ERROR = "error"  # connection refused or reset


@dataclass(frozen=True)
class Outcome:
    at: float  # planned send time (seconds since start)
    region: int
    status: str  # "200", "429", "503", ..., TIMEOUT or ERROR
    latency: float  # seconds from the planned send time to the whole answer (or to giving up)
    server: str  # the backend server HAProxy chose (its X-Served-By), "" when none answered
    lag: float  # how late the request left, seconds

    @property
    def ok(self) -> bool:
        return self.status == "200"


def request_bytes(engine: str, host: str, planned: PlannedRequest) -> bytes:
    """TGI's /generate for tgi pods, the OpenAI completions API for the others."""
    words = " ".join(["w"] * planned.prompt)
    if engine == "tgi":
        path = "/generate"
        body = f'{{"inputs": "{words}", "parameters": {{"max_new_tokens": {planned.output}}}}}'
    else:
        path = "/v1/completions"
        body = f'{{"model": "m", "prompt": "{words}", "max_tokens": {planned.output}}}'
    data = body.encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


async def _one(planned, port: int, payload: bytes, start: float, timeout: float) -> Outcome:
    loop = asyncio.get_running_loop()
    delay = start + planned.at - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)
    lag = max(0.0, loop.time() - (start + planned.at))
    status, server = ERROR, ""
    try:
        async with asyncio.timeout(max(timeout - lag, 0.001)):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(payload)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                status, server = _parse_head(head)
                await reader.read()  # Connection: close, so the body ends at EOF
            finally:
                writer.close()
    except TimeoutError:
        status = TIMEOUT
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        status = ERROR if status == ERROR else status
    latency = loop.time() - (start + planned.at)
    return Outcome(planned.at, planned.region, status, latency, server, lag)


def _parse_head(head: bytes) -> tuple[str, str]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = parts[1] if len(parts) > 1 else ERROR
    server = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "x-served-by":
            server = value.strip()
    return status, server


async def _replay(planned, ports, engine, timeout, started_at: list) -> list[Outcome]:
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.5  # time to create the tasks before the first is due
    started_at.append(time.monotonic() + (start - loop.time()))
    payloads = [request_bytes(engine, f"127.0.0.1:{ports[p.region]}", p) for p in planned]
    tasks = [
        asyncio.create_task(_one(p, ports[p.region], payload, start, timeout)) for p, payload in zip(planned, payloads)
    ]
    return list(await asyncio.gather(*tasks))


def replay(
    planned: list[PlannedRequest], ports: list[int], engine: str, timeout: float, started_at: list | None = None
) -> list[Outcome]:
    """Send every planned request to the frontend port of its region; blocks until all are done.

    `started_at` receives the time.monotonic() of the run's zero, so monitors can line up."""
    return asyncio.run(_replay(planned, ports, engine, timeout, started_at if started_at is not None else []))
