"""Command-line entry point: picks the subcommand and imports only its module.

Each subcommand lives in exporter/commands/<name>.py and defines HELP,
add_arguments(parser) and run(args) -> exit code. Importing lazily keeps
`llm-healthcheck check` from loading gunicorn or plotting libraries.
"""

import importlib
import sys

from exporter import __version__
from exporter.commands.cli_parser import Parser
from exporter.config.errors import ConfigError, report_config_error

COMMANDS = {
    "serve": "exporter.commands.serve",
    "check": "exporter.commands.check",
    "test": "exporter.commands.test",
    "eval": "exporter.commands.eval",
    "fake-server": "exporter.commands.fake_server",
    "simulate": "exporter.commands.simulate",
    "testbed": "exporter.commands.testbed",
    "demo": "exporter.commands.demo",
    "configmap": "exporter.commands.configmap",
    "panel": "exporter.commands.panel",
}
DEFAULT_COMMAND = "serve"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        _print_usage()
        return 0
    if argv and argv[0] in ("--version", "-V"):
        print(f"llm-healthcheck {__version__}")
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
    parser = Parser(prog=f"llm-healthcheck {name}", description=module.HELP)
    module.add_arguments(parser)
    try:
        args = parser.parse_args(argv)
        return int(module.run(args) or 0)
    except ConfigError as err:
        # Every configuration error of every command, at start or in `check`: one line per
        # problem, the program's name first, exit status 2.
        report_config_error(err)
        return 2
    except KeyboardInterrupt:
        return 130
    except SystemExit as done:  # --help, or a usage error already printed as one line
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 2)


def _print_usage() -> None:
    print("usage: llm-healthcheck [COMMAND] [ARGS...]   (default command: serve)")
    print("       llm-healthcheck --version\n")
    for name, path in COMMANDS.items():
        try:
            summary = importlib.import_module(path).HELP.splitlines()[0]
        except ImportError:
            summary = "(not available)"
        print(f"  {name:<12} {summary}")
