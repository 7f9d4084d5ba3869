"""The command line is parsed into one ``Options``: every flag of every command is a typed field,
and no field is left that no command sets."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from starfish_batch.launcher import cli
from starfish_batch.launcher.options import Options


def _dests() -> dict[str, set[str]]:
    """Each command's flag destinations, read from the parser itself."""
    found: dict[str, set[str]] = {}
    for action in cli.build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = {a.dest for a in sub._actions if a.dest != "help"}
    return found


def test_every_flag_is_a_field_and_every_field_a_flag():
    dests = _dests()
    assert set(dests) == set(cli.COMMANDS)
    fields = {f.name for f in dataclasses.fields(Options)}
    every_flag = set().union(*dests.values()) | {"command"}
    assert every_flag - fields == set()
    assert fields - every_flag == {"invocation"}


def test_a_flag_the_options_lack_is_refused():
    with pytest.raises(TypeError, match="no field for the flag.* new_flag"):
        Options.from_namespace(argparse.Namespace(command="run", new_flag=1))


@pytest.mark.parametrize("command", cli.COMMANDS)
def test_each_command_parses_into_options_with_the_parsers_defaults(command):
    argv = [command] + (["RUN"] if command in ("status", "cancel") else [])
    options = cli.parse_args(argv)
    assert type(options) is Options and options.command == command
    parsed = vars(cli.build_parser().parse_args(argv))
    assert {name: getattr(options, name) for name in parsed} == parsed


def test_a_results_bucket_becomes_the_results_url():
    options = cli.parse_args(["status", "r1", "--results-bucket", "lab-results"])
    assert options.results_url == "s3://lab-results"
