"""What both benchmarks share: the model and images they run, the machine they ran on, timing, JSON output."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bnn_hw.errors import BnnError
from bnn_hw.model import BnnModel, load_model

DEFAULT_MLP = (784, 256, 256, 10)  # the project's default MLP shape (Fashion-MNIST 28x28x1 input)
DEFAULT_SEED = 0


@dataclass
class Workload:
    """A model and images, with a sentence saying where each came from (printed and recorded)."""

    model: BnnModel
    model_note: str
    images: np.ndarray
    images_note: str
    labels: np.ndarray | None = None
    trained: bool = False  # a model file was given (so accuracy on the labels means something)


def parse_mlp(text: str) -> tuple[int, ...]:
    """'784-256-256-10' -> (784, 256, 256, 10); the first entry must be 784 (a 28x28x1 image)."""
    try:
        sizes = tuple(int(v) for v in text.replace(",", "-").split("-"))
    except ValueError:
        raise BnnError(f"MLP shape {text!r} is not a list of sizes like 784-256-256-10") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise BnnError(f"MLP shape {text!r} needs an input size and at least one layer size, all positive")
    if sizes[0] != 784:
        raise BnnError(f"MLP shape {text!r} must start with 784 (28x28x1 images)")
    return sizes


def random_mlp(sizes: tuple[int, ...] = DEFAULT_MLP, seed: int = DEFAULT_SEED) -> BnnModel:
    """A seeded random model of an MLP shape on 28x28x1 images (no training needed)."""
    from bnn_hw.synthetic import random_model

    return random_model(
        (28, 28, 1), list(sizes[1:-1]), num_classes=sizes[-1], seed=seed, name="random-mlp-" + "-".join(map(str, sizes))
    )


def load_workload(
    model_path: str | None,
    count: int,
    seed: int = DEFAULT_SEED,
    data_dir: str | None = None,
    mlp: tuple[int, ...] = DEFAULT_MLP,
) -> Workload:
    """The model given on the command line, or a seeded random MLP; Fashion-MNIST test images when the model takes
    28x28x1 images and the files are present, else seeded random images (tiled to `count`)."""
    if model_path:
        model = load_model(model_path)
        model_note = f"model {model_path} ({model.name}, hash {model.hash[:16]})"
    else:
        model = random_mlp(mlp, seed)
        model_note = (
            f"no model given: a random {'-'.join(map(str, mlp))} MLP with seed {seed} "
            f"(hash {model.hash[:16]}); pass --model FILE.bnn for a trained one"
        )
    labels = None
    images = None
    images_note = ""
    if tuple(model.input_shape) == (28, 28, 1):
        try:
            from bnn_hw.datasets import load_dataset

            data = load_dataset("fashion-mnist", "test", data_dir)
            images, labels = data.images, data.labels
            images_note = (
                f"the first {count} Fashion-MNIST test images"
                if count <= len(images)
                else f"Fashion-MNIST test images (all {len(images)})"
            )
        except (BnnError, ImportError) as exc:
            images_note = f"Fashion-MNIST not available ({exc}); "
    if images is None:
        from bnn_hw.synthetic import random_images

        images = random_images(model, min(count, 10_000), seed=seed)
        images_note += f"seeded random images (seed {seed})"
    if len(images) < count:  # repeat the set to reach the requested count
        reps = -(-count // len(images))
        images = np.concatenate([images] * reps)
        labels = None if labels is None else np.concatenate([labels] * reps)
        images_note += f", repeated to {count}"
    images, labels = images[:count], None if labels is None else labels[:count]
    return Workload(model, model_note, np.ascontiguousarray(images), images_note, labels, bool(model_path))


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
    }
    if hasattr(os, "getloadavg"):  # a shared machine's other work slows every number down
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def now_utc() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def time_best(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    """Wall-clock seconds of fn(): (median, all runs) after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times
