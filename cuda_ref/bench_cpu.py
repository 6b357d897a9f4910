"""`bnn-hw bench cpu`: the numpy golden model versus the same network as a PyTorch float model, on the CPU.

Both classify the same images; the record holds images/s of each, their ratio, and whether the classes (and the
integer scores) agree bit for bit. The float model is `cuda_ref.torch_ref.FloatBnn` in float32, which is exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from bnn_hw.cuda_ref.bench_common import Workload, machine, now_utc, time_best

from bnn_hw import golden


def bench_cpu(
    work: Workload, *, repeats: int = 3, batch_size: int = 2048, threads: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Measure and return the JSON-ready record."""
    import torch
    from bnn_hw.cuda_ref.torch_ref import float_model

    from bnn_hw.progress import bar

    if threads:
        torch.set_num_threads(threads)
    model, images = work.model, work.images
    n = len(images)
    steps = bar(total=2 * (repeats + 1), desc="bench cpu", unit="run", enabled=progress, leave=False, every=25)

    def golden_once() -> golden.GoldenResult:
        result = golden.run(model, images, batch_size=batch_size)
        steps.update()
        return result

    reference = golden.run(model, images, batch_size=batch_size)
    golden_s, golden_runs = time_best(golden_once, repeats, warmup=1)

    fm = float_model(model, "float32", "cpu")
    x = torch.from_numpy(np.array(images))  # a writable copy (data set arrays may be read-only)
    outputs: list[torch.Tensor] = []

    def torch_once() -> None:
        outputs.clear()
        with torch.inference_mode():
            outputs.extend(fm(x[i : i + batch_size]) for i in range(0, n, batch_size))
        steps.update()

    torch_s, torch_runs = time_best(torch_once, repeats, warmup=1)
    steps.close()
    torch_scores = torch.cat(outputs).numpy()
    torch_classes = np.argmax(torch_scores, axis=1)
    class_mismatches = int(np.count_nonzero(torch_classes != reference.classes))
    score_mismatches = int(np.count_nonzero((torch_scores != reference.scores).any(axis=1)))
    record: dict[str, Any] = {
        "benchmark": "bench cpu",
        "date": now_utc(),
        "machine": machine(),
        "model": {
            "name": model.name,
            "hash": model.hash,
            "note": work.model_note,
            "layers": [layer.describe() for layer in model.layers],
        },
        "images": {"count": n, "note": work.images_note},
        "params": {
            "repeats": repeats,
            "batch_size": batch_size,
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "golden_numpy": {"seconds": golden_s, "runs": golden_runs, "images_per_s": n / golden_s},
        "torch_float32_cpu": {
            "seconds": torch_s,
            "runs": torch_runs,
            "images_per_s": n / torch_s,
            "class_mismatches": class_mismatches,
            "score_mismatches": score_mismatches,
        },
        "golden_vs_torch_speed": torch_s / golden_s,
        "bit_exact": class_mismatches == 0 and score_mismatches == 0,
    }
    if work.labels is not None and work.trained:
        record["accuracy"] = float(np.mean(reference.classes == work.labels))
    return record


def summary(record: dict[str, Any]) -> list[str]:
    """Human-readable lines of a record."""
    g, t = record["golden_numpy"], record["torch_float32_cpu"]
    n = record["images"]["count"]
    lines = [
        f"model:  {record['model']['note']}",
        f"images: {record['images']['note']}",
        f"golden (numpy):        {n} images in {g['seconds']:.3f} s = {g['images_per_s']:,.0f} images/s",
        f"PyTorch float32 (CPU): {n} images in {t['seconds']:.3f} s = {t['images_per_s']:,.0f} images/s "
        f"({record['params']['torch_threads']} threads)",
        f"golden / PyTorch speed: {record['golden_vs_torch_speed']:.2f}x",
        f"bit-exact: {'yes' if record['bit_exact'] else 'NO'} (classes differing: {t['class_mismatches']}, "
        f"score rows differing: {t['score_mismatches']})",
    ]
    if "accuracy" in record:
        lines.append(f"accuracy on the labels: {100 * record['accuracy']:.2f} %")
    return lines
