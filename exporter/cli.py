"""Command-line entry point: picks the subcommand and imports only its module.

Each subcommand lives in exporter/commands/<name>.py and defines HELP,
add_arguments(parser) and run(args) -> exit code. Importing lazily keeps
`llm-healthcheck check` from loading gunicorn or plotting libraries.
"""

import argparse
import importlib
import sys

COMMANDS = {
    "serve": "exporter.commands.serve",
    "check": "exporter.commands.check",
    "test": "exporter.commands.test",
    "eval": "exporter.commands.eval",
    "fake-server": "exporter.commands.fake_server",
    "simulate": "exporter.commands.simulate",
    "testbed": "exporter.commands.testbed",
    "demo": "exporter.commands.demo",
}
DEFAULT_COMMAND = "serve"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        _print_usage()
        return 0
    name = argv[0] if argv and argv[0] in COMMANDS else None
    if name is None and argv and not argv[0].startswith("-"):
        print(f"llm-healthcheck: unknown command {argv[0]!r}; one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    if name is None:
        name = DEFAULT_COMMAND
    else:
        argv = argv[1:]
    module = importlib.import_module(COMMANDS[name])
    parser = argparse.ArgumentParser(prog=f"llm-healthcheck {name}", description=module.HELP)
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130


def _print_usage() -> None:
    print("usage: llm-healthcheck [COMMAND] [ARGS...]   (default command: serve)\n")
    for name, path in COMMANDS.items():
        try:
            summary = importlib.import_module(path).HELP.splitlines()[0]
        except ImportError:
            summary = "(not available)"
        print(f"  {name:<12} {summary}")
