"""The command dispatcher: every command is listed and importable; unknown ones are refused."""

import subprocess
import sys

from exporter.cli import COMMANDS


def run(*args):
    return subprocess.run([sys.executable, "-m", "exporter", *args], capture_output=True, text=True, timeout=60)


def test_help_lists_every_command_with_a_summary():
    result = run("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        line = next(line for line in result.stdout.splitlines() if line.strip().startswith(name + " "))
        assert "(not available)" not in line


def test_unknown_command_is_refused():
    result = run("serv")
    assert result.returncode == 2
    assert result.stderr.startswith("llm-healthcheck: unknown command 'serv'; one of: serve,")
