"""The argument parser every subcommand gets: defaults shown in --help, and a usage mistake
reported as one line `llm-healthcheck: ...` with exit 2, like every other configuration error."""

import argparse
import sys

PROGRAM = "llm-healthcheck"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends "(default: X)" where a flag has a default its help text does not already say."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, argparse.SUPPRESS)
            or not action.option_strings
            or action.nargs == 0
        ):
            return text
        return f"{text} (default: {default})"


class Parser(argparse.ArgumentParser):
    def __init__(self, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)

    def error(self, message: str):
        fail(f"{message} (see `{self.prog} --help`)")


def fail(message: str):
    """One line per problem on stderr, each with the program's prefix, then exit 2."""
    for line in str(message).splitlines() or [""]:
        print(f"{PROGRAM}: {line}", file=sys.stderr)
    raise SystemExit(2)
