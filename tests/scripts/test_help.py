"""Every option of every script explains itself, and states its default once."""

import argparse
import importlib.util
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = sorted([*(ROOT / "scripts").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")])


class _Parsed(Exception):
    """Raised instead of parsing, carrying the parser that a script's main() built."""


def script_parser(path: pathlib.Path) -> argparse.ArgumentParser:
    """The ``argparse`` parser that ``path``'s ``main`` builds (caught at ``parse_args``)."""
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)

    def catch(parser, *args, **kwargs):
        raise _Parsed(parser)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = catch
    try:
        module.main([])
    except _Parsed as caught:
        return caught.args[0]
    finally:
        argparse.ArgumentParser.parse_args = original
    raise AssertionError(f"{path.name}: main() returned without parsing its arguments")


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        elif not isinstance(action, argparse._HelpAction):
            yield parser, action


@pytest.mark.parametrize("path", SCRIPTS, ids=[f"{p.parent.name}/{p.name}" for p in SCRIPTS])
def test_every_option_has_help_with_its_default_once(path):
    parser = script_parser(path)
    for owner, action in _actions(parser):
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"{path.name}: {name} has no help text"
        text = owner.formatter_class(owner.prog)._expand_help(action)
        assert text.count("default") <= 1, f"{path.name}: {name} states its default twice: {text}"


def test_a_zero_default_is_stated():
    from training.cli import HelpFormatter

    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seed")
    parser.add_argument("--flag", action="store_true", help="a switch")
    text = parser.format_help()
    assert "seed (default: 0)" in text and "a switch (default" not in text


@pytest.mark.parametrize("script, flags, message", [
    ("train_lm.py", ["--minutes", "-2"], "argument --minutes: must be a positive number, got -2"),
    ("train_catbabi.py", ["--minutes", "-1"],
     "argument --minutes: must be a positive number, got -1"),
    ("train_catbabi.py", ["--lr", "-0.1"], "argument --lr: must be a positive number, got -0.1"),
    ("train_lm.py", ["--lr", "0"], "argument --lr: must be a positive number, got 0"),
    ("train_lm.py", ["--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
    ("train_lm.py", ["--dropout", "-0.5"], "argument --dropout: must be a number >= 0"),
])
def test_budgets_and_rates_are_refused_at_the_boundary(script, flags, message, run_script):
    """A bad budget or rate is an argument error naming the flag and the value, before any
    data is read or any file written."""
    res = run_script(script, *flags, expect=2)
    assert message in res.stderr
