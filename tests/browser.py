"""Headless Chromium for tests: one-shot runs (--dump-dom, --screenshot) and a live page driven
over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages ended by NUL on
file descriptors 3 and 4), so a test can watch a page that reloads itself.

Every run gets a fresh profile directory and a bounded lifetime; the process is ended by its
own handle.
"""

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.support import require_tool

INSTALL = "apt-get install chromium; .ci/run installs it"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


def _profile(tmp_path: Path) -> str:
    return f"--user-data-dir={tmp_path / f'profile-{time.monotonic_ns()}'}"


def chromium() -> str:
    """The browser, by the tests' one policy for outside tools: missing fails in CI, skips elsewhere."""
    return require_tool("chromium", INSTALL)


def run(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [chromium(), *FLAGS, _profile(tmp_path), *args], capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


class LivePage:
    """One tab, kept open: navigate, then evaluate expressions in it (DevTools' own evaluation,
    which the page's Content-Security-Policy does not restrict; the page itself has no script)."""

    def __init__(self, tmp_path: Path):
        commands_r, self._commands = os.pipe()
        self._replies, replies_w = os.pipe()
        # Chromium reads the protocol on fd 3 and writes on fd 4: a tiny exec wrapper puts the
        # pipe ends there (pass_fds keeps their numbers, which are not 3 and 4 here).
        launcher = (
            "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
            "os.execv(sys.argv[3], sys.argv[3:])"
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                launcher,
                str(commands_r),
                str(replies_w),
                chromium(),
                *FLAGS,
                _profile(tmp_path),
                "--remote-debugging-pipe",
            ],
            pass_fds=(commands_r, replies_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_r)
        os.close(replies_w)
        self._buffer, self._next_id = b"", 0
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def navigate(self, url: str) -> None:
        self._call("Page.navigate", {"url": url}, session=True)

    def evaluate(self, expression: str):
        reply = self._call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        return reply["result"].get("value")

    def wait_for(self, expression: str, predicate, timeout: float = 20.0, what: str = "the page"):
        """Evaluate until predicate(value) holds; bounded. Returns the value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if predicate(value):
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; last value {value!r}")

    def close(self) -> None:
        try:
            self._call("Browser.close", {}, timeout=5)
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self._commands)
        os.close(self._replies)

    def _call(self, method: str, params: dict, session: bool = False, timeout: float = 20.0) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next_id:  # anything else is an event
                    assert "error" not in reply, reply
                    return reply["result"]
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no reply to {method} within {timeout}s"
            ready, _, _ = select.select([self._replies], [], [], remaining)
            if ready:
                chunk = os.read(self._replies, 1 << 20)
                assert chunk, "chromium closed the DevTools pipe"
                self._buffer += chunk
