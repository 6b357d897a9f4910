"""What a model holds, in numbers and in words (`bnn-hw info`, the export log, the report); numpy-only core."""

from __future__ import annotations

from typing import Any

from bnn_hw.model import BnnModel


def memory_summary(model: BnnModel) -> dict[str, Any]:
    """Weight and threshold bits per layer, and the size versus float32 weights + BatchNorm."""
    rows: list[dict[str, Any]] = []
    for i, layer in enumerate(model.layers):
        weight_bits = layer.fan_in * layer.out_features
        # a threshold needs enough bits for min(acc) .. max(acc) + 1
        lo, hi = layer.acc_range
        thr_bits = max(1, (hi - lo + 1).bit_length()) + (1 if lo < 0 else 0)
        param_bits = thr_bits * layer.out_features
        rows.append(
            {
                "layer": i,
                "description": layer.describe(),
                "fan_in": layer.fan_in,
                "out_features": layer.out_features,
                "out_shape": list(layer.out_shape),
                "weight_bits": weight_bits,
                "threshold_or_bias_bits": param_bits,
                "float32_bits": 32 * weight_bits + 4 * 32 * layer.out_features,
            }
        )
    total_bits = sum(r["weight_bits"] + r["threshold_or_bias_bits"] for r in rows)
    bare = sum(r["weight_bits"] for r in rows)
    float_bits = sum(r["float32_bits"] for r in rows)
    return {
        "name": model.name,
        "hash": model.hash,
        "input_shape": list(model.input_shape),
        "binarize_at": model.binarize_at,
        "classes": model.classes,
        "source": model.source,
        "layers": rows,
        "total_bits": total_bits,
        "weight_bits": bare,
        "overhead_vs_bare_bits": total_bits / bare,
        "compression_vs_float32": float_bits / total_bits,
    }


def describe(model: BnnModel) -> str:
    """The model as a table: one line per layer with its weight and threshold bits, then the totals."""
    s = memory_summary(model)
    lines = [
        f"model {s['name']}  hash {s['hash'][:16]}  input {tuple(s['input_shape'])} uint8"
        + (f" binarized at {s['binarize_at']}" if s["binarize_at"] is not None else " raw pixels"),
        f"{'#':>2}  {'layer':<58} {'weight bits':>12} {'thr/bias bits':>13}",
    ]
    for r in s["layers"]:
        lines.append(
            f"{r['layer']:>2}  {r['description']:<58} {r['weight_bits']:>12,} {r['threshold_or_bias_bits']:>13,}"
        )
    lines.append(
        f"total {s['total_bits']:,} bits ({s['total_bits'] / 8 / 1024:.1f} KiB), "
        f"{s['overhead_vs_bare_bits']:.3f}x the bare weight bits, "
        f"{s['compression_vs_float32']:.1f}x smaller than float32"
    )
    lines.append(f"classes: {', '.join(s['classes'])}")
    return "\n".join(lines)
