"""The `bnn-hw` command line: one subcommand per stage of the chain.

Each subcommand lives in its own module with `add_arguments(parser)` and `run(args) -> int`; the module is imported
only when its subcommand is used, so `bnn-hw --help` and numpy-only commands never load torch, amaranth or cocotb.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from bnn_hw import __version__
from bnn_hw.errors import BnnError

# name -> (module, one-line help). Order is the order of the chain.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("bnn_hw.train.commands.train", "train a binarized network (BinaryNet recipe) on a data set"),
    "export": ("bnn_hw.train.commands.export", "export a trained checkpoint to the threshold-and-bitweight .bnn form"),
    "verify": ("bnn_hw.train.commands.verify", "check the golden model against the PyTorch checkpoint, bit for bit"),
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


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (with the fix) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_help())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"bnn-hw {__version__}")
        return 0
    name = argv[0]
    if name not in COMMANDS:
        what = "option" if name.startswith("-") else "command"
        sys.stderr.write(f"bnn-hw: error: unknown {what} {name!r}; choose from: {', '.join(COMMANDS)}\n")
        return 2
    module_name, help_ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
        parser = OneLineParser(prog=f"bnn-hw {name}", description=help_)
        module.add_arguments(parser)
        args = parser.parse_args(argv[1:])
        return int(module.run(args) or 0)
    except BnnError as exc:
        sys.stderr.write(f"bnn-hw {name}: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"bnn-hw {name}: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
