"""FINN-style Brevitas models through QONNX into bnn-hw, checked on all 10,000 Fashion-MNIST test images.

For each preset (TFC, SFC, LFC MLPs and a small CNV-style ConvNet; bnn_hw.qonnx.brevitas_models): a short training
run, Brevitas' own `export_qonnx`, then the classes of (1) the Brevitas eval-mode forward, (2) QONNX's executor on the
exported file, (3) the golden model after `bnn-hw import`, and optionally (4) the RTL simulation of the imported
model on the first --sim-images test images. `--diagnose` also studies the issue-17 probe model (Brevitas' default
0.1-scale weights, per-class BatchNorm on the scores) layer by layer: where Brevitas and QONNX differ, and why.

    nice python benchmarks/brevitas_qonnx.py --out runs/brevitas --json benchmarks/brevitas_qonnx.json --diagnose
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bnn_hw.artifacts import SimReport


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check_preset(name: str, epochs: int, out: Path, train_set, test_set, sim_images: int, seed: int) -> dict:
    import torch
    from bnn_hw.qonnx.brevitas_models import PRESETS, FinnNet, brevitas_scores, export, to_input, train
    from bnn_hw.qonnx.converter import import_onnx
    from bnn_hw.qonnx.writer import execute_batches

    from bnn_hw import golden
    from bnn_hw.model import save_model

    torch.manual_seed(seed)
    t0 = time.time()
    net = train(FinnNet(PRESETS[name]), train_set.images, train_set.labels, epochs=epochs, seed=seed, log=log)
    t_train = time.time() - t0
    onnx_path = export(net, out / f"{name}.onnx")
    images, labels = test_set.images, test_set.labels
    brevitas = brevitas_scores(net, images)
    t1 = time.time()
    executor = execute_batches(onnx_path, to_input(images).numpy(), batch=1000)
    t_exec = time.time() - t1
    t2 = time.time()
    model, notes = import_onnx(onnx_path, classes=list(test_set.info.classes), name=f"brevitas-{name}")
    t_import = time.time() - t2
    save_model(model, out / f"{name}.bnn")
    ref = golden.run(model, images).classes
    b, e = brevitas.argmax(1), executor.argmax(1)
    row = {
        "preset": name,
        "layers": [layer.describe() for layer in model.layers],
        "model_hash": model.hash,
        "epochs": epochs,
        "train_seconds": round(t_train, 1),
        "images": len(images),
        "accuracy": float((ref == labels).mean()),
        "brevitas_vs_executor_disagree": int((b != e).sum()),
        "golden_vs_executor_disagree": int((ref != e).sum()),
        "golden_vs_brevitas_disagree": int((ref != b).sum()),
        "executor_seconds": round(t_exec, 1),
        "import_seconds": round(t_import, 1),
        "notes": notes,
    }
    if sim_images:
        build = out / f"{name}-rtl"
        cli = [sys.executable, "-m", "bnn_hw", "rtl", str(out / f"{name}.bnn"), "-o", str(build), "-q"]
        subprocess.run(cli, check=True)
        sim = [sys.executable, "-m", "bnn_hw", "sim", str(build), "--model", str(out / f"{name}.bnn")]
        subprocess.run([*sim, "--images", str(sim_images), "--simulator", "verilator"], check=True)
        report = SimReport.read(build / SimReport.FILE).to_json()
        row["rtl_sim"] = {k: report[k] for k in ("simulator", "images", "mismatch_count", "reference")}
    log(json.dumps(row))
    return row


def diagnose(out: Path, train_set, test_set, epochs: int, seed: int) -> dict:
    """The issue-17 probe model (Brevitas' default SignedBinaryWeightPerTensorConst, scale 0.1; per-class BatchNorm
    on the scores): per layer, where do Brevitas' forward and QONNX's executor differ, and in which node?"""
    import torch
    from bnn_hw.qonnx.brevitas_models import PRESETS, FinnNet, export, to_input, train
    from bnn_hw.qonnx.writer import with_batch
    from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    torch.manual_seed(seed)
    net = FinnNet(
        PRESETS["issue17"],
        weight_quant=SignedBinaryWeightPerTensorConst,
        act_quant=SignedBinaryActPerTensorConst,
        last_norm="batch",
    )
    net = train(net, train_set.images, train_set.labels, epochs=epochs, seed=seed, log=log)
    path = export(net, out / "issue17.onnx")
    x = to_input(test_set.images)
    taps: dict[str, list[np.ndarray]] = {}

    def hook(name):
        def fn(_m, _i, o):
            taps.setdefault(name, []).append(o.detach().numpy())

        return fn

    mods = list(net.classifier)
    for i, m in enumerate(mods):
        m.register_forward_hook(hook(f"{type(m).__name__}{i}"))
    with torch.no_grad():
        eval_scores = np.concatenate([net(x[s : s + 1000]).numpy() for s in range(0, len(x), 1000)])
    torch_t = {k: np.concatenate(v) for k, v in taps.items()}
    net.train()
    with torch.no_grad():
        train_scores = np.concatenate([net(x[s : s + 1000]).numpy() for s in range(0, len(x), 1000)])
    net.eval()
    base = ModelWrapper(str(path))
    ctx: dict[str, list[np.ndarray]] = {}
    m = with_batch(base, 1000)
    for s in range(0, len(x), 1000):
        res = execute_onnx(m, {m.graph.input[0].name: x[s : s + 1000].numpy()}, return_full_exec_context=True)
        for k, v in res.items():
            ctx.setdefault(k, []).append(v)
    onnx_t = {k: np.concatenate(v) for k, v in ctx.items() if np.ndim(v[0]) >= 1 and len(v[0]) == 1000}
    ops = [(n.op_type, n.output[0]) for n in base.graph.node if n.op_type in ("Gemm", "BatchNormalization")]
    bn_outputs = {o for t, o in ops if t == "BatchNormalization"}
    quants = [n.output[0] for n in base.graph.node if n.op_type == "BipolarQuant" and n.input[0] in bn_outputs]
    gemms = [o for t, o in ops if t == "Gemm"]
    bns = [o for t, o in ops if t == "BatchNormalization"]
    t_lin = [torch_t[k] for k in torch_t if k.startswith("QuantLinear")]
    t_bn = [torch_t[k] for k in torch_t if k.startswith("BatchNorm")]
    t_act = [torch_t[k] for k in torch_t if k.startswith("QuantIdentity")]
    layers = []
    for i in range(len(gemms)):
        row = {
            "layer": i,
            "gemm_outputs_differ": int((t_lin[i] != onnx_t[gemms[i]]).sum()),
            "gemm_max_abs_diff": float(np.abs(t_lin[i] - onnx_t[gemms[i]]).max()),
            "bn_outputs_differ": int((t_bn[i] != onnx_t[bns[i]]).sum()),
        }
        same_in = t_lin[i] == onnx_t[gemms[i]]
        row["bn_differs_on_equal_input"] = int(((t_bn[i] != onnx_t[bns[i]]) & same_in).sum())
        if i < len(quants):
            flips = t_act[i] != onnx_t[quants[i]]
            row["sign_bits_differ"] = int(flips.sum())
            row["sign_bits_differ_on_equal_gemm"] = int((flips & same_in).sum())
            row["bn_zero_outputs_torch"] = int((t_bn[i] == 0).sum())
        layers.append(row)
    e = onnx_t[base.graph.output[0].name].argmax(1)
    result = {
        "model": "784-64-48-10 binarized input, SignedBinaryWeightPerTensorConst (scale 0.1), per-class BatchNorm",
        "images": len(x),
        "eval_forward_vs_executor_classes_disagree": int((eval_scores.argmax(1) != e).sum()),
        "train_mode_forward_vs_executor_classes_disagree": int((train_scores.argmax(1) != e).sum()),
        "layers": layers,
    }
    log(json.dumps(result))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="tfc,sfc,lfc,cnv")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-images", type=int, default=None, help="first N training images (default: all)")
    parser.add_argument("--sim-images", type=int, default=200, help="RTL-simulated test images per model (0: none)")
    parser.add_argument("--out", type=Path, default=Path("runs/brevitas"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--diagnose", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from importlib.metadata import version

    import torch

    from bnn_hw.datasets import load_dataset

    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    train_set = load_dataset("fashion-mnist", "train").subset(args.train_images)
    test_set = load_dataset("fashion-mnist", "test")
    result = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}",
        "versions": {p: version(p) for p in ("torch", "brevitas", "qonnx", "onnx", "onnxruntime")},
        "models": [],
    }
    if args.diagnose:
        result["diagnosis"] = diagnose(args.out, train_set, test_set, args.epochs, args.seed)
    for name in args.presets.split(","):
        if name:
            result["models"].append(
                check_preset(name, args.epochs, args.out, train_set, test_set, args.sim_images, args.seed)
            )
            if args.json:
                args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
