"""Sharded simulation (sim.shards, `bnn-hw sim --shards K`): the merged report equals one run's, image for image."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from bnn_hw.sim import tools

from bnn_hw.cli import main as cli
from bnn_hw.model import save_model
from bnn_hw.synthetic import random_model

pytest.importorskip("amaranth")
pytest.importorskip("cocotb")
pytest.importorskip("distributed")

from bnn_hw.sim.network import Phase  # noqa: E402
from bnn_hw.sim.shards import shard_bounds, shard_phases  # noqa: E402

IMAGES = 300


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    ok, why = tools.available("verilator")
    if not ok:
        pytest.skip(why)
    d = tmp_path_factory.mktemp("shards")
    model = random_model((8, 8, 1), [24, 16], num_classes=10, seed=21, name="shards")
    save_model(model, d / "model.bnn")
    assert cli(["rtl", str(d / "model.bnn"), "--pe", "4", "--simd", "16", "-o", str(d / "build"), "-q"]) == 0
    return d / "build", d / "model.bnn"


def test_shard_bounds_and_phases() -> None:
    assert shard_bounds(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert shard_bounds(5, 5) == [(k, k + 1) for k in range(5)]
    phases = [Phase("latency", 0, 1), Phase("stream", 0, 10, seed=7), Phase("restart", 8, 2)]
    plans = shard_phases(phases, shard_bounds(10, 2))
    assert [p.name for p in plans[0]] == ["latency", "stream", "restart"]
    assert [(p.first_image, p.n_images) for p in plans[0]] == [(0, 1), (0, 5), (8, 2)]
    assert [(p.name, p.first_image, p.n_images) for p in plans[1]] == [("stream", 5, 5)]
    assert plans[0][1].seed == 7 and plans[1][0].seed != 7  # shard 0 draws the single run's gaps


@pytest.fixture(scope="module")
def single_run(small_build, tmp_path_factory):
    """The images, reference, phase list and the one-process run that every sharded run must equal."""
    from bnn_hw.sim.manifest import load_design
    from bnn_hw.sim.network import plan_phases, run_network

    from bnn_hw import golden
    from bnn_hw.model import load_model
    from bnn_hw.synthetic import random_images

    build, model_path = small_build
    model, design = load_model(model_path), load_design(build)
    images = random_images(model, IMAGES, seed=3)
    ref = golden.run(model, images)
    assert len({int(c) for c in ref.classes}) >= 3  # results differ between images: reordering would show
    phases = plan_phases(
        IMAGES, seed=3, gap=0.2, stall=0.2, reset_check=True, measure=True,
        beats_per_image=design.pixels.beats_per_image, cycles_per_image=design.cycles_per_image,
        latency=design.latency,
    )  # fmt: skip
    work = tmp_path_factory.mktemp("one")
    one = run_network(design, images, ref.classes, ref.scores, "verilator", work, phases)
    return design, images, ref, phases, one, work


def _same_as_one_run(one: dict, sharded: dict) -> None:
    by1 = {p["name"]: p for p in one["phases"]}
    by2 = {p["name"]: p for p in sharded["phases"]}
    assert list(by1) == list(by2) == ["latency", "throughput", "stream", "abort", "restart"]
    s1, s2 = by1["stream"], by2["stream"]
    assert s2["n_images"] == s2["results"] == s2["matched"] == IMAGES  # every image accounted for
    assert s2["mismatch_count"] == s1["mismatch_count"] == 0
    assert s1["result_words"] == s2["result_words"]  # the same result, image for image, in image order
    for name in ("latency", "throughput", "abort", "restart"):  # run once, in shard 0, exactly as in one run
        assert by1[name] == by2[name], name


def test_sharded_run_equals_the_unsharded_one_image_for_image(small_build, single_run, tmp_path, capsys) -> None:
    from bnn_hw.sim.shards import run_sharded

    build, model_path = small_build
    design, images, ref, phases, one, work = single_run
    seen: list[tuple[int, int]] = []
    two = run_sharded(
        design, images, ref.classes, ref.scores, "verilator", tmp_path / "two", phases, 2,
        progress=lambda done, total: seen.append((done, total)), build_dir=work / "build_verilator",
    )  # fmt: skip
    _same_as_one_run(one, two)
    assert [(s["first_image"], s["n_images"]) for s in two["shards"]] == [(0, 150), (150, 150)]
    assert {s["worker"] for s in two["shards"]} == {"local"}  # threads of this process, no cluster
    assert seen[-1] == (IMAGES, IMAGES) and all(total == IMAGES for _, total in seen)
    # each shard's beat file holds only the images its phases use (shard 1: its own 150)
    assert len((tmp_path / "two" / "shard_1" / "beats.hex").read_text().split()) == 150 * design.pixels.beats_per_image

    # the command on two shards (in the single run's work folder: its build is reused): a passing report with the
    # single run's measurements and both shards listed
    argv = ["sim", str(build), "--model", str(model_path), "--images", str(IMAGES), "--random-images", "--seed", "3"]
    assert cli([*argv, "--work-dir", str(work), "--shards", "2"]) == 0
    import json

    report = json.loads((build / "sim_report.json").read_text())
    capsys.readouterr()
    assert report["passed"] and report["results_matched"] == IMAGES and report["mismatch_count"] == 0
    assert report["cycles_per_image"] == design.cycles_per_image and report["latency_cycles"] == design.latency
    assert len(report["shards"]) == 2 and sum(s["matched"] for s in report["shards"]) == IMAGES


def test_sharding_errors_are_one_line(small_build, tmp_path, capsys) -> None:
    build, model = small_build
    base = ["sim", str(build), "--model", str(model), "--images", "4", "--random-images"]
    for extra, message, code in [
        (["--shards", "0"], "argument --shards: must be an integer >= 1", 2),  # usage errors exit 2 (docs/cli.md)
        (["--shards", "5"], "more than the 4 images", 1),
        (["--shards", "2", "--driver", "python"], "harness driver", 2),
        (["--scheduler", "node1:8786"], "not a scheduler address", 1),
    ]:
        assert cli([*base, "--work-dir", str(tmp_path / "w"), *extra]) == code
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err


def test_sharded_run_on_a_dask_scheduler_equals_the_unsharded_one(single_run, tmp_path) -> None:
    """The `--scheduler` path: shards as Dask tasks (an in-process cluster on the loopback here), each task sent only
    its window of the images."""
    from bnn_hw.sim.shards import run_sharded
    from distributed import LocalCluster

    design, images, ref, phases, one, work = single_run
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster:  # fmt: skip
        two = run_sharded(
            design, images, ref.classes, ref.scores, "verilator", tmp_path, phases, 2,
            scheduler=cluster.scheduler_address, build_dir=work / "build_verilator",
        )  # fmt: skip
    _same_as_one_run(one, two)
    assert [(s["first_image"], s["n_images"]) for s in two["shards"]] == [(0, 150), (150, 150)]
    assert all(str(s["worker"]).startswith("tcp://127.0.0.1:") for s in two["shards"])


def test_a_window_must_hold_its_phases(small_build, tmp_path) -> None:
    from bnn_hw.sim.manifest import load_design
    from bnn_hw.sim.network import run_network

    from bnn_hw.errors import BnnError

    design = load_design(small_build[0])
    images = np.zeros((10, 8, 8, 1), dtype=np.uint8)
    classes, scores = np.zeros(10, dtype=np.int64), np.zeros((10, 10), dtype=np.int64)
    run = functools.partial(run_network, design, images, classes, scores, "verilator", tmp_path)
    with pytest.raises(BnnError, match=r"needs images up to 25, only 10\.\.19 given"):
        run([Phase("stream", 15, 10)], first_index=10, build_images=100)
    with pytest.raises(BnnError, match="a build sized for 5 images cannot hold 10"):
        run([Phase("stream", 0, 10)], build_images=5)
