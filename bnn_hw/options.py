"""Command options as Python keyword arguments: the bridge between the CLI and the public Python API.

Each public API function (`bnn_hw.rtl.generate_rtl`, `bnn_hw.sim.simulate`, ...) runs its subcommand's own `run(args)`
on an `argparse.Namespace` holding that subcommand's defaults with the caller's keywords on top, so the API and the CLI
make the same call with the same defaults. Keywords are the options' long names with `_` for `-` (`--target-cycles`
is `target_cycles=`); an unknown keyword fails in one line naming the valid ones. Needs nothing beyond the standard
library.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bnn_hw.errors import BnnError

# Keyword spellings accepted for the same option whichever of them a subcommand uses (`-o/--out` vs `--output`).
_ALIASES = {"out": ("out", "output"), "output": ("output", "out")}


def _parser_actions(add_arguments: Callable[[argparse.ArgumentParser], None]) -> list[argparse.Action]:
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    return [a for a in parser._actions if a.dest != argparse.SUPPRESS]


def _actions(add_arguments: Callable[[argparse.ArgumentParser], None]) -> dict[str, argparse.Action]:
    """One action per destination: the first declared (a later hidden alias such as `--limit` for `--images` shares
    its destination and has no default of its own)."""
    out: dict[str, argparse.Action] = {}
    for a in _parser_actions(add_arguments):
        out.setdefault(a.dest, a)
    return out


def _spellings(add_arguments: Callable[[argparse.ArgumentParser], None]) -> dict[str, str]:
    """Keyword -> destination for every long option name (`--pixels-per-beat` -> pixels_per_beat), aliases too."""
    out: dict[str, str] = {}
    for a in _parser_actions(add_arguments):
        out.setdefault(a.dest, a.dest)
        for flag in a.option_strings:
            if flag.startswith("--"):
                out.setdefault(flag[2:].replace("-", "_"), a.dest)
    return out


def defaults(add_arguments: Callable[[argparse.ArgumentParser], None]) -> dict[str, Any]:
    """Every option's destination and default, as the subcommand's parser declares them."""
    return {dest: a.default for dest, a in _actions(add_arguments).items()}


def namespace(
    command: str, add_arguments: Callable[[argparse.ArgumentParser], None], **values: Any
) -> argparse.Namespace:
    """The Namespace `bnn-hw COMMAND` would parse: its defaults, then `values` (None values keep the default).

    Values are given in their parsed form; for an option the parser keeps as text (`--pe 8,16`) an int or a list of
    ints is also taken (`pe=[8, 16]`), and text for a path option becomes a Path."""
    actions = _actions(add_arguments)
    spellings = _spellings(add_arguments)
    ns = {dest: a.default for dest, a in actions.items()}
    for key, value in values.items():
        dest = next((spellings[d] for d in _ALIASES.get(key, (key,)) if d in spellings), None)
        if dest is None:
            raise BnnError(
                f"{command}: unknown option {key}=; the options of `bnn-hw {command}` are: {', '.join(sorted(actions))}"
            )
        if value is None:
            continue
        kind = actions[dest].type
        if kind is None and isinstance(value, list | tuple):
            value = ",".join(map(str, value))
        elif kind is None and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        elif kind is Path and isinstance(value, str):
            value = Path(value)
        choices = actions[dest].choices
        if choices is not None and value not in choices:
            raise BnnError(f"{command}: {key}={value!r} is not one of: {', '.join(map(str, choices))}")
        ns[dest] = value
    return argparse.Namespace(**ns)


def run_command(module_name: str, command: str, **values: Any) -> int:
    """Run `bnn-hw COMMAND`'s `run(args)` with keyword options; returns its exit status (failures raise BnnError)."""
    module = importlib.import_module(module_name)
    return int(module.run(namespace(command, module.add_arguments, **values)) or 0)


def command_line(module_name: str, command: str, **values: Any) -> str:
    """The `bnn-hw COMMAND ...` line equivalent to `run_command(module_name, command, **values)`: positionals in
    order, then every option that differs from its default (what a run folder records as the exact command)."""
    import shlex

    module = importlib.import_module(module_name)
    ns = vars(namespace(command, module.add_arguments, **values))
    words = ["bnn-hw", *command.split()]
    options: list[str] = []
    for dest, action in _actions(module.add_arguments).items():
        value = ns.get(dest)
        if not action.option_strings:
            if value is not None:
                words.append(_word(value))
            continue
        if value is None or value == action.default:
            continue
        flag = max(action.option_strings, key=len)
        if isinstance(action, argparse._StoreTrueAction):
            options.append(flag)
        elif isinstance(value, list | tuple):
            options += [flag, ",".join(map(str, value))]
        else:
            options += [flag, _word(value)]
    return shlex.join([*words, *options])


def _word(value: Any) -> str:
    return str(value)
