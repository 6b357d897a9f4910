"""`bnn-hw verify model.bnn --against CHECKPOINT`: golden model versus PyTorch, every bit of every layer."""

from __future__ import annotations

import argparse
from pathlib import Path

from bnn_hw.argtypes import positive_int

VERIFY_CHUNK = 500  # images per golden/PyTorch pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the exported .bnn model")
    parser.add_argument("--against", type=Path, required=True, help="the checkpoint.pt it was exported from")
    parser.add_argument("--dataset", default=None, help="data set to run (default: the checkpoint's)")
    parser.add_argument("--split", default="test", choices=["train", "test"], help="which split of the data set")
    parser.add_argument(
        "--images", type=positive_int, default=None, metavar="N", help="only the first N images (default: all)"
    )
    parser.add_argument("--limit", dest="images", type=positive_int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="data set folder, torchvision layout (default: the usual places)"
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="also write the agreement report here (default: none)"
    )


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from bnn_hw.train.checkpoint import load_checkpoint
    from bnn_hw.train.export import exactness_problems, torch_layer_outputs

    from bnn_hw import fileio, golden
    from bnn_hw.artifacts import LayerAgreement, Verify
    from bnn_hw.datasets import load_dataset
    from bnn_hw.errors import BnnError
    from bnn_hw.model import load_model

    if args.json:
        fileio.writable_file(args.json, what="--json")
    model = load_model(args.model)
    path = args.against / "checkpoint.pt" if args.against.is_dir() else args.against
    ckpt = load_checkpoint(path)
    if model.source.get("checkpoint_sha256") not in (None, ckpt.hash):
        raise BnnError(
            f"{args.model} was exported from another checkpoint "
            f"({model.source['checkpoint_sha256'][:16]}, not {ckpt.hash[:16]}): re-export it"
        )
    data = load_dataset(args.dataset or ckpt.dataset.name, args.split, data_dir=args.data_dir)
    images, labels = data.images, data.labels
    if args.images is not None:
        images, labels = images[: args.images], labels[: args.images]
    if tuple(images.shape[1:]) != tuple(model.input_shape):
        raise BnnError(f"data set images are {images.shape[1:]}, the model expects {model.input_shape}")
    # In chunks: a ConvNet's per-layer traces of 10,000 images would not fit in memory at once.
    agree = np.zeros(len(model.layers), dtype=np.int64)
    total = np.zeros(len(model.layers), dtype=np.int64)
    class_agree = golden_correct = torch_correct = 0
    k = len(model.classes)
    confusion = np.zeros((k, k), dtype=np.int64)  # rows: true label, columns: the golden model's class
    for start in range(0, len(images), VERIFY_CHUNK):
        chunk, chunk_labels = images[start : start + VERIFY_CHUNK], labels[start : start + VERIFY_CHUNK]
        gold = golden.run(model, chunk)
        ref = torch_layer_outputs(ckpt.model, chunk)
        for i, theirs in enumerate(ref):
            ours = gold.layers[i].out
            agree[i] += int(np.count_nonzero(ours == theirs)) if ours.shape == theirs.shape else 0
            total[i] += int(ours.size)
        torch_classes = ref[-1].argmax(axis=1)
        class_agree += int(np.count_nonzero(torch_classes == gold.classes))
        golden_correct += int(np.count_nonzero(gold.classes == chunk_labels))
        if len(chunk_labels) and int(chunk_labels.max()) < k:
            np.add.at(confusion, (chunk_labels, gold.classes), 1)
        torch_correct += int(np.count_nonzero(torch_classes == chunk_labels))
    rows = [
        LayerAgreement(
            layer=i,
            what="scores" if layer.output == "scores" else "bits",
            agree=int(agree[i]),
            total=int(total[i]),
        )
        for i, layer in enumerate(model.layers)
    ]
    report = Verify(
        model=str(args.model),
        model_hash=model.hash,
        checkpoint_sha256=ckpt.hash,
        dataset=data.info.name,
        split=args.split,
        images=len(images),
        layers=rows,
        classes_agree=class_agree,
        golden_accuracy=golden_correct / len(images),
        pytorch_accuracy=torch_correct / len(images),
        classes=list(model.classes),
        confusion_matrix=confusion.tolist(),
    )
    print(f"{'layer':>5}  {'checked':>8}  {'agree':>12}  {'of':>12}  {'%':>9}")
    for r in rows:
        print(f"{r.layer:>5}  {r.what:>8}  {r.agree:>12,}  {r.total:>12,}  {100 * r.agree / r.total:>8.3f}%")
    print(f"{'':>5}  {'classes':>8}  {class_agree:>12,}  {len(images):>12,}  {100 * class_agree / len(images):>8.3f}%")
    print(
        f"accuracy on {data.info.name} {args.split} ({len(images):,} images): golden "
        f"{100 * report.golden_accuracy:.2f} %, PyTorch {100 * report.pytorch_accuracy:.2f} %"
    )
    if args.json:
        report.write(args.json)
    exact = report.bit_exact
    if exact:
        print("BIT-EXACT")
        return 0
    first = next((r for r in rows if r.agree != r.total), None)
    where = f"first at layer {first.layer} ({first.what})" if first else "in the classes"
    problems = exactness_problems(ckpt.model)
    cause = problems[0] if problems else f"{args.model} is not what this checkpoint exports: re-export it"
    print(f"MISMATCH: the golden model and PyTorch disagree, {where}: {cause}")
    return 1
