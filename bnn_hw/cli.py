"""The `bnn-hw` command line: one subcommand per stage of the chain.

Each subcommand lives in its own module with `add_arguments(parser)` and `run(args) -> int`; the module is imported
only when its subcommand is used, so `bnn-hw --help` and numpy-only commands never load torch, amaranth or cocotb.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from bnn_hw import __version__
from bnn_hw.errors import BnnError, UsageError

# name -> (module, one-line help). Order is the order of the chain.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("bnn_hw.train.commands.train", "train a binarized network (BinaryNet recipe) on a data set"),
    "export": ("bnn_hw.train.commands.export", "export a trained checkpoint to the threshold-and-bitweight .bnn form"),
    "verify": ("bnn_hw.train.commands.verify", "check the golden model against the PyTorch checkpoint, bit for bit"),
    "import": (
        "bnn_hw.qonnx.commands.import_onnx",
        "import a QONNX/FINN binarized network (e.g. from Brevitas) as a .bnn",
    ),
    "export-qonnx": (
        "bnn_hw.qonnx.commands.export_qonnx",
        "write a .bnn model as a QONNX graph (QONNX executor, FINN)",
    ),
    "info": ("bnn_hw.commands.info", "describe a .bnn model: layers, shapes, memory"),
    "rtl": ("bnn_hw.rtl.commands.rtl", "generate Verilog for a PE x SIMD XNOR-popcount accelerator"),
    "synth": ("bnn_hw.rtl.commands.synth", "synthesize generated Verilog with Yosys and report resources"),
    "sim": ("bnn_hw.sim.commands.sim", "simulate generated Verilog cycle by cycle with cocotb, checked bit for bit"),
    "bench": ("bnn_hw.cuda_ref.commands.bench", "measure throughput: `bench cpu` (golden vs PyTorch) or `bench gpu`"),
    "sweep": ("bnn_hw.flow.sweep", "design-space sweep: generate and synthesize many PE x SIMD sizes, Pareto plot"),
    "report": ("bnn_hw.flow.report", "one HTML page (and Markdown) of a run: accuracy, exactness, area, speed"),
    "build": ("bnn_hw.flow.build", "run the chain a build configuration file describes, into one run folder"),
    "demo": ("bnn_hw.flow.demo", "run the whole chain on Fashion-MNIST: train, export, rtl, sim, summary"),
}


# Where each command's details live (its --help stays short).
DOCS = {
    "train": "docs/training.md",
    "export": "docs/format.md",
    "verify": "docs/training.md",
    "info": "docs/format.md",
    "rtl": "docs/rtl.md",
    "synth": "docs/rtl.md",
    "sim": "docs/sim.md",
    "bench": "docs/gpu.md",
    "sweep": "docs/rtl.md",
    "build": "docs/build.md",
    "import": "docs/qonnx.md",
    "export-qonnx": "docs/qonnx.md",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (with the fix) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


class HelpFormatter(argparse.HelpFormatter):
    """Shows every option's default: `(default: X)` is appended unless the help text already names the default.

    Options whose default is None (the value comes from elsewhere: a preset, the model, the build) must say so in
    their help text, with the word "default"; tests/test_cli_conventions.py checks every subcommand.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=min(120, max(80, _columns())))

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default is None or default is False or default is argparse.SUPPRESS:
            return text
        if not action.option_strings:
            return text
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._VersionAction)):
            return text
        if isinstance(default, (list, tuple)):
            default = ",".join(map(str, default))
        return f"{text} (default: {str(default).replace('%', '%%')})"


def _columns() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def make_parser(name: str) -> argparse.ArgumentParser:
    """The parser of one subcommand, as `bnn-hw NAME` builds it (also used by the conventions test)."""
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = OneLineParser(
        prog=f"bnn-hw {name}",
        description=f"{help_}. Details: {DOCS.get(name, 'README.md')}; option conventions: docs/cli.md.",
        formatter_class=HelpFormatter,
    )
    module.add_arguments(parser)
    return parser


def _top_help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [
        "usage: bnn-hw [--version] [--help] COMMAND [ARGS]",
        "",
        "Binarized neural networks from PyTorch to bit-exact, cycle-accurate verified hardware.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `bnn-hw COMMAND --help` for the options of one command."]
    return "\n".join(lines)


def _quiet_broken_pipe() -> int:
    """The reader went away (`bnn-hw info m.bnn --json - | head`): the Python docs' recipe is to point stdout at
    devnull so the final flush at exit does not raise again, and to exit non-zero, silently."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "--version"):
        try:
            print(f"bnn-hw {__version__}" if argv and argv[0] == "--version" else _top_help())
            sys.stdout.flush()
        except BrokenPipeError:
            return _quiet_broken_pipe()
        return 0 if argv else 2
    name = argv[0]
    if name not in COMMANDS:
        what = "option" if name.startswith("-") else "command"
        sys.stderr.write(f"bnn-hw: error: unknown {what} {name!r}; choose from: {', '.join(COMMANDS)}\n")
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        parser = make_parser(name)
        try:
            args = parser.parse_args(argv[1:])
        except SystemExit as exc:  # --help (0) or a usage error already printed (2): a return code for callers
            sys.stdout.flush()  # a closed pipe after --help shows here, inside the handler below
            return int(exc.code or 0) if not isinstance(exc.code, str) else 2
        code = int(module.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at interpreter exit
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except UsageError as exc:
        sys.stderr.write(f"bnn-hw {name}: error: {exc} (see `bnn-hw {name} --help`)\n")
        return 2
    except BnnError as exc:
        sys.stderr.write(f"bnn-hw {name}: error: {exc}\n")
        return 1
    except OSError as exc:  # a write the command did not guard (it should): still one line, never a traceback
        from bnn_hw.fileio import reason

        where = f" {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"bnn-hw {name}: error: input/output failed{where}: {reason(exc)}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"bnn-hw {name}: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
