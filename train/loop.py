"""The BinaryNet training recipe: Adam with exponential learning-rate decay, weight clipping after every step,
squared-hinge (paper) or cross-entropy loss on the model's scaled integer scores.

`train(TrainConfig(...))` is the Python entry point (used by `bnn-hw train` and `bnn-hw demo`). It is deterministic on
the CPU for a given seed: every epoch re-seeds its shuffling, augmentation and dropout from (seed, epoch), so an
interrupted run resumed from its checkpoint continues exactly as the uninterrupted one would have.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from bnn_hw.train.checkpoint import load_checkpoint, save_checkpoint
from bnn_hw.train.data import AUGMENTATIONS, TensorData, apply_augment, augment_params, batches, to_tensors
from bnn_hw.train.distributed import SINGLE, DistContext, device_for, init_from_env, shutdown
from bnn_hw.train.layers import BinaryConv2d, BinaryLinear, BinaryNet, ThresholdBatchNorm, clip_weights
from bnn_hw.train.models import ModelConfig, build_model, get_preset, make_config
from torch import nn

from bnn_hw import fileio
from bnn_hw.artifacts import Metrics
from bnn_hw.datasets import DATASETS, Dataset, dataset_info, load_dataset
from bnn_hw.errors import BnnError, UsageError

LOSSES = ("squared-hinge", "cross-entropy")
CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = Metrics.FILE
CURVE_NAME = "training_curve.png"
CHECK_EVERY = 50  # steps between NaN checks (each one waits for the GPU)


@dataclass
class TrainConfig:
    """One training run. `None` means "the preset's value" (see train.models.PRESETS)."""

    out: str | Path = "runs/train"
    preset: str = "mlp"
    dataset: str = "fashion-mnist"
    epochs: int | None = None
    batch_size: int | None = None
    lr_start: float | None = None
    lr_end: float | None = None
    loss: str = "squared-hinge"
    hidden: list[int] | None = None
    dropout_in: float | None = None
    dropout_hidden: float | None = None
    binarize_input: int | None = None
    lr_scale: bool = True  # BinaryNet's per-layer learning-rate scaling of binary weights (Glorot bound)
    augment: str = "none"
    seed: int = 0
    device: str = "cpu"
    data_dir: str | None = None
    train_limit: int | None = None  # train on the first N training images only (quick runs, tests)
    test_limit: int | None = None
    threads: int | None = None  # torch CPU threads; None keeps torch's choice
    resume: bool = False
    progress: bool = True
    checkpoint_every: int = 1  # epochs between checkpoints (and curve plots); the last epoch is always saved
    distributed: bool = False  # join the torchrun process group (train.distributed): DDP, NCCL on GPUs, gloo on CPUs

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["out"] = str(self.out)
        return data


@dataclass
class TrainResult:
    checkpoint: Path
    metrics_path: Path
    curve: Path | None
    model: BinaryNet
    config: ModelConfig
    test_acc: float
    hash: str
    metrics: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------------- helpers


def squared_hinge(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BinaryNet's loss: mean over classes of max(0, 1 - t * y)^2 with one-hot targets t in {-1, +1}."""
    target = -torch.ones_like(logits)
    target.scatter_(1, labels[:, None], 1.0)
    return torch.clamp(1.0 - target * logits, min=0.0).square().mean()


def loss_fn(name: str):
    if name == "squared-hinge":
        return squared_hinge
    if name == "cross-entropy":
        return F.cross_entropy
    raise BnnError(f"unknown loss {name!r}; choose from: {', '.join(LOSSES)}")


def lr_scales(model: nn.Module) -> dict[int, float]:
    """BinaryNet's per-layer learning-rate scale for binary weights: 1 / Glorot-uniform bound of the layer.

    Latent weights live in [-1, 1] whatever the layer size, while Adam's steps are about lr in size; scaling by the
    inverse Glorot bound gives wide layers (small bound) proportionally bigger steps, as in the paper's code.
    """
    scales: dict[int, float] = {}
    for module in model.modules():
        if isinstance(module, BinaryLinear):
            fan_in, fan_out = module.in_features, module.out_features
        elif isinstance(module, BinaryConv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            fan_in, fan_out = module.in_channels * k, module.out_channels * k
        else:
            continue
        scales[id(module.weight)] = 1.0 / math.sqrt(6.0 / (fan_in + fan_out))
    return scales


def param_groups(model: nn.Module, use_scales: bool) -> list[dict[str, Any]]:
    scales = lr_scales(model) if use_scales else {}
    groups: dict[float, list[nn.Parameter]] = {}
    for p in model.parameters():
        groups.setdefault(scales.get(id(p), 1.0), []).append(p)
    return [{"params": ps, "lr_scale": s} for s, ps in sorted(groups.items())]


def epoch_lr(epoch: int, epochs: int, lr_start: float, lr_end: float) -> float:
    """Exponential decay: lr_start at epoch 0, lr_end at the last epoch."""
    if epochs <= 1:
        return lr_start
    return lr_start * (lr_end / lr_start) ** (epoch / (epochs - 1))


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**62)


@torch.no_grad()
def evaluate(model: BinaryNet, data: TensorData, batch_size: int = 1000) -> float:
    """Test accuracy of the eval-mode model on its integer scores (first index of the maximum, like the golden)."""
    was_training = model.training
    model.eval()
    correct = 0
    for x, y in batches(data, batch_size):
        correct += int((model(x).argmax(1) == y).sum())
    model.train(was_training)
    return correct / max(1, len(data))


def _resolve(cfg: TrainConfig) -> dict[str, Any]:
    """The preset's recipe with the user's overrides: the concrete values this run uses."""
    preset = get_preset(cfg.preset)
    if cfg.dataset not in DATASETS:
        raise BnnError(f"unknown dataset {cfg.dataset!r}; choose from: {', '.join(DATASETS)}")
    d = preset.defaults
    values = {
        "epochs": d.epochs if cfg.epochs is None else cfg.epochs,
        "batch_size": d.batch_size if cfg.batch_size is None else cfg.batch_size,
        "lr_start": d.lr_start if cfg.lr_start is None else cfg.lr_start,
        "lr_end": d.lr_end if cfg.lr_end is None else cfg.lr_end,
    }
    if values["epochs"] < 1:
        raise BnnError(f"--epochs must be at least 1, got {values['epochs']}")
    if cfg.checkpoint_every < 1:
        raise BnnError(f"--checkpoint-every must be at least 1, got {cfg.checkpoint_every}")
    if values["batch_size"] < 1:
        raise BnnError(f"--batch-size must be at least 1, got {values['batch_size']}")
    for key in ("lr_start", "lr_end"):
        v = values[key]
        if not (math.isfinite(v) and v > 0):
            raise BnnError(f"--{key.replace('_', '-')} must be a positive number, got {v}")
    loss_fn(cfg.loss)
    if cfg.augment not in AUGMENTATIONS:
        raise BnnError(f"unknown augmentation {cfg.augment!r}; choose from: {', '.join(AUGMENTATIONS)}")
    if cfg.device not in ("cpu", "cuda") and not str(cfg.device).startswith("cuda:"):
        raise BnnError(f"unknown device {cfg.device!r}; choose from: cpu, cuda")
    if str(cfg.device).startswith("cuda") and not torch.cuda.is_available():
        raise BnnError("--device cuda: PyTorch sees no CUDA GPU here; use --device cpu")
    for key in ("train_limit", "test_limit"):
        v = getattr(cfg, key)
        if v is not None and v < 1:
            raise BnnError(f"{key.replace('_', '-')} must be at least 1, got {v}")
    return values


# Settings a resumed run takes from its checkpoint. A value given again must equal the stored one, except these:
RESUME_MAY_CHANGE = ("epochs",)
_RESTORED = (
    "preset",
    "dataset",
    "epochs",
    "batch_size",
    "lr_start",
    "lr_end",
    "loss",
    "hidden",
    "dropout_in",
    "dropout_hidden",
    "binarize_input",
    "lr_scale",
    "augment",
    "seed",
    "train_limit",
    "test_limit",
)
_MODEL_KEYS = ("hidden", "dropout_in", "dropout_hidden", "binarize_input")  # compared with the model's own config


def _flag(key: str) -> str:
    return "--no-lr-scale" if key == "lr_scale" else "--" + key.replace("_", "-")


def resume_config(out: str | Path, given: dict[str, Any], **run_options: Any) -> TrainConfig:
    """The TrainConfig that continues `out/checkpoint.pt` with the settings it was trained with.

    `given` holds the result-changing options the user stated again (TrainConfig field names); each must agree
    with the checkpoint, except --epochs (to train further). `run_options` (device, threads, data_dir, progress,
    checkpoint_every) are the new run's own. A contradiction raises one BnnError naming the option and both values.
    """
    ckpt_path = Path(out) / CHECKPOINT_NAME
    if not ckpt_path.is_file():
        raise BnnError(f"--resume: no checkpoint at {ckpt_path}; run without --resume to start training")
    ckpt = load_checkpoint(ckpt_path)
    stored = dict(ckpt.train)
    model = ckpt.config.to_dict()
    stored.setdefault("preset", ckpt.config.preset)
    stored.setdefault("dataset", ckpt.dataset.name)
    for key in _MODEL_KEYS:
        if stored.get(key) is None:
            stored[key] = model.get(key)
    stored.setdefault("epochs", ckpt.epoch)
    for key, value in given.items():
        if key in RESUME_MAY_CHANGE or key not in _RESTORED:
            continue
        theirs = stored.get(key)
        if key in _MODEL_KEYS and theirs is None:
            theirs = model.get(key)
        if _differs(value, theirs):
            shown = "" if key == "lr_scale" else f" {_show(value)}"
            raise UsageError(
                f"--resume: {_flag(key)}{shown} contradicts {ckpt_path}, trained with {_show(theirs, key)}; drop "
                f"{_flag(key)} to continue that run (only --epochs may change), or start a new one with another --out"
            )
    settings = {key: stored.get(key) for key in _RESTORED if key in stored}
    settings.update({k: v for k, v in given.items() if k in RESUME_MAY_CHANGE})
    if run_options.get("data_dir") is None and stored.get("data_dir"):
        run_options["data_dir"] = stored["data_dir"]
    return TrainConfig(out=out, **settings, **run_options, resume=True)


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return list(a or []) != list(b or [])
    if isinstance(a, float) or isinstance(b, float):
        return a is None or b is None or not math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return a != b


def _show(value: Any, key: str = "") -> str:
    if key == "lr_scale":
        return "learning-rate scaling " + ("on" if value else "off")
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _plot(metrics: dict, path: Path) -> Path | None:
    """Loss and accuracy per epoch as a PNG (matplotlib's Agg back end: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = metrics["epochs"]
    if not rows:
        return None
    ep = [r["epoch"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(ep, [r["loss"] for r in rows], marker="o")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel(f"training loss ({metrics['train']['loss']})")
    ax1.grid(True, alpha=0.3)
    ax2.plot(ep, [100 * r["train_acc"] for r in rows], marker="o", label="train (dropout on)")
    ax2.plot(ep, [100 * r["test_acc"] for r in rows], marker="o", label="test")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy (%)")
    ax2.grid(True, alpha=0.3)
    ax2.legend()
    from matplotlib.ticker import MaxNLocator

    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs only
    fig.suptitle(f"{metrics['model']['preset']} on {metrics['dataset']['name']}")
    fig.tight_layout()
    try:
        with fileio.atomic(path) as tmp:
            fig.savefig(tmp, dpi=80, format="png")
    finally:
        plt.close(fig)
    return path


def _fast_gpu_flags() -> tuple[bool, bool, bool]:
    """Switch on TF32 and cuDNN autotuning for a GPU run; returns the previous settings for `_restore_flags`.

    TF32 keeps the forward sums exact: +-1 weights and activations and 0..255 pixels need at most 8 significant bits
    (TF32 has 11) and the products are accumulated in float32. cuDNN's autotuner picks the fastest convolution for
    the fixed shapes (GPU runs are not bit-reproducible anyway; CPU runs are).
    """
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    _restore_flags((True, True, True))
    return saved


def _restore_flags(flags: tuple[bool, bool, bool]) -> None:
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = flags


class _Logits(nn.Module):
    """The network's training forward (`logits`) as `forward`, so that DistributedDataParallel can wrap it."""

    def __init__(self, net: BinaryNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.logits(x)


def _distributed_forward(model: BinaryNet, ctx: DistContext, device: torch.device):
    """The step's forward: the bare model in one process, a DDP wrapper with synced BatchNorm statistics otherwise."""
    if not ctx.enabled:
        return model.logits
    for module in model.modules():
        if isinstance(module, ThresholdBatchNorm):
            module.synced = True
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(_Logits(model), device_ids=ids, forward_sync_buffers=False)


def checkpoint_bytes(model: nn.Module) -> int:
    """About what one save writes: float32 weights plus Adam's two moments, twice (the temporary and the old file)."""
    params = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
    return 2 * 3 * 4 * params + (1 << 20)


# ---------------------------------------------------------------------------------------------------------- train


def train(cfg: TrainConfig, train_data: Dataset | None = None, test_data: Dataset | None = None) -> TrainResult:
    """Train (or resume) a BinaryNet; writes checkpoint.pt, metrics.json and training_curve.png into cfg.out.

    `train_data`/`test_data` may be passed in (already loaded) instead of being read by name.
    """
    values = _resolve(cfg)
    ctx = init_from_env(cfg.device) if cfg.distributed else SINGLE
    try:
        return _train(cfg, values, ctx, train_data, test_data)
    finally:
        shutdown(ctx)


def _train(
    cfg: TrainConfig, values: dict[str, Any], ctx: DistContext, train_data: Dataset | None, test_data: Dataset | None
) -> TrainResult:
    epochs, batch_size = values["epochs"], values["batch_size"]
    if batch_size < ctx.world_size:
        raise BnnError(
            f"--batch-size {batch_size} is the global batch and must be at least the {ctx.world_size} processes"
        )
    progress = cfg.progress and ctx.is_main
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT_NAME
    if out.exists() and not out.is_dir():
        raise BnnError(f"--out {out}: is a file; name a folder for checkpoint.pt, metrics.json and the curve")
    if cfg.threads is not None:
        if int(cfg.threads) < 1:
            raise BnnError(f"--threads must be at least 1, got {cfg.threads}")
        torch.set_num_threads(int(cfg.threads))

    info = dataset_info(cfg.dataset) if train_data is None else train_data.info
    if train_data is None:
        train_data = load_dataset(cfg.dataset, "train", cfg.data_dir)
    if test_data is None:
        test_data = load_dataset(cfg.dataset, "test", cfg.data_dir)
    train_data, test_data = train_data.subset(cfg.train_limit), test_data.subset(cfg.test_limit)

    torch.manual_seed(cfg.seed)
    model_cfg = make_config(
        cfg.preset,
        info.input_shape,
        info.num_classes,
        hidden=cfg.hidden,
        dropout_in=cfg.dropout_in,
        dropout_hidden=cfg.dropout_hidden,
        binarize_input=cfg.binarize_input,
    )
    start_epoch = 0
    metrics: dict[str, Any] = {"epochs": []}
    resumed = None
    if cfg.resume:
        if not ckpt_path.is_file():
            raise BnnError(f"--resume: no checkpoint at {ckpt_path}; run without --resume to start training")
        resumed = load_checkpoint(ckpt_path)
        if resumed.config.input_shape != model_cfg.input_shape or resumed.dataset.name != info.name:
            raise BnnError(
                f"--resume: {ckpt_path} was trained on {resumed.dataset.name} "
                f"{resumed.config.input_shape} (C, H, W), not {info.name} {model_cfg.input_shape}"
            )
        if resumed.config != model_cfg:
            raise BnnError(
                f"--resume: {ckpt_path} holds a different model ({resumed.config.preset}, hidden "
                f"{resumed.config.hidden}); use the same --preset and --hidden, or a new --out"
            )
        start_epoch = resumed.epoch
        if start_epoch >= values["epochs"]:
            print(
                f"{ckpt_path} already holds {start_epoch} epochs (>= --epochs {values['epochs']}): nothing to "
                f"train; pass a larger --epochs to continue it",
                file=sys.stderr,
            )
        metrics = resumed.metrics or metrics
        metrics["epochs"] = list(metrics.get("epochs", []))[:start_epoch]
    elif ckpt_path.exists():
        raise BnnError(f"{ckpt_path} already exists; pass --resume to continue it, or choose another --out")

    model = build_model(model_cfg)
    if resumed is not None:
        model.load_state_dict(resumed.model.state_dict())
    if ctx.is_main:  # a read-only, full or mistyped output folder fails now, not after the last epoch
        fileio.writable_dir(out, what="--out", need_bytes=checkpoint_bytes(model))
    device = device_for(ctx, cfg.device)
    model.to(device)
    if train_data.images.shape[1:] != info.input_shape:
        raise BnnError(
            f"training images have shape {train_data.images.shape[1:]}, the model expects {info.input_shape} (H, W, C)"
        )
    train_t, test_t = to_tensors(train_data, device), to_tensors(test_data, device)

    groups = param_groups(model, cfg.lr_scale)
    on_gpu = device.type == "cuda"
    forward = _distributed_forward(model, ctx, device)
    optimizer = torch.optim.Adam(groups, lr=values["lr_start"], fused=True if on_gpu else None)
    if resumed is not None and resumed.optimizer_state is not None:
        optimizer.load_state_dict(resumed.optimizer_state)
    criterion = loss_fn(cfg.loss)

    metrics.update(
        {
            "model": model_cfg.to_dict(),
            "dataset": info.to_dict(),
            "train": {
                **cfg.to_dict(),
                **values,
                "train_images": len(train_data),
                "test_images": len(test_data),
                "torch": str(torch.__version__),
                "threads": torch.get_num_threads(),
                "world_size": ctx.world_size,
                "backend": ctx.backend or None,
            },
        }
    )
    steps_per_epoch = math.ceil(len(train_data) / batch_size)
    digest = ""
    test_acc = metrics["epochs"][-1]["test_acc"] if metrics["epochs"] else 0.0
    curve: Path | None = None
    from bnn_hw.progress import bar as progress_bar

    saved_flags = _fast_gpu_flags() if on_gpu else None
    try:
        for epoch in range(start_epoch, epochs):
            lr = epoch_lr(epoch, epochs, values["lr_start"], values["lr_end"])
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            seed = epoch_seed(cfg.seed, epoch)
            torch.manual_seed(seed + ctx.rank)  # dropout (per process in a distributed run)
            gen = torch.Generator().manual_seed(seed)  # order and augmentation
            model.train()
            started = time.perf_counter()
            bar = progress_bar(
                batches(train_t, batch_size, gen),
                total=steps_per_epoch,
                enabled=progress,
                desc=f"epoch {epoch + 1}/{epochs}",
                unit="batch",
                every=25,
            )
            # Everything random for the epoch is drawn up front and the running sums stay on the device: a step never
            # waits for the GPU (the loss is checked for NaN every CHECK_EVERY steps, naming the step where it began).
            aug = augment_params(len(train_t), cfg.augment, gen).to(device) if cfg.augment != "none" else None
            step_losses = torch.zeros(steps_per_epoch, device=device)
            correct_t = torch.zeros((), dtype=torch.long, device=device)
            seen = 0
            for step, (x, y) in enumerate(bar):
                n = int(y.shape[0])  # the global batch; this process's share of it below
                part = ctx.share(n)
                x, y = x[part], y[part]
                if aug is not None:
                    x = apply_augment(x, cfg.augment, aug[seen : seen + n][part])
                logits = forward(x)
                share = int(y.shape[0])
                # scaled so that DDP's average over processes is the gradient of the global batch's mean loss
                loss = criterion(logits, y) if share else logits.sum() * 0.0
                optimizer.zero_grad(set_to_none=True)
                (loss * (share * ctx.world_size / n) if ctx.enabled else loss).backward()
                optimizer.step()
                clip_weights(model)
                step_losses[step] = loss.detach() * share
                correct_t += (logits.detach().argmax(1) == y).sum()
                seen += n
                if step % CHECK_EVERY == 0 or step == steps_per_epoch - 1:
                    losses = step_losses[: step + 1]
                    if not bool(torch.isfinite(losses).all()):
                        bad = int((~torch.isfinite(losses)).nonzero()[0])
                        value = float(losses[bad])
                        raise BnnError(
                            f"the loss became {value} at epoch {epoch + 1}, step {bad + 1} "
                            f"(global step {epoch * steps_per_epoch + bad + 1}); lower --lr-start "
                            f"(now {values['lr_start']:g})"
                        )
                    if progress and not ctx.enabled:
                        bar.set_postfix(
                            loss=f"{float(losses.sum()) / seen:.4f}", acc=f"{100 * int(correct_t) / seen:.2f}%"
                        )
            ctx.all_sum(step_losses)
            ctx.all_sum(correct_t)
            total_loss, correct = float(step_losses.sum()), int(correct_t)
            test_acc = evaluate(model, test_t)
            seconds = time.perf_counter() - started
            row = {
                "epoch": epoch + 1,
                "lr": lr,
                "loss": total_loss / max(1, seen),
                "train_acc": correct / max(1, seen),
                "test_acc": test_acc,
                "seconds": seconds,
            }
            metrics["epochs"].append(row)
            metrics["test_acc"] = test_acc
            metrics["best_test_acc"] = max(r["test_acc"] for r in metrics["epochs"])
            metrics["train_seconds"] = sum(r["seconds"] for r in metrics["epochs"])
            if progress:
                bar.write(
                    f"epoch {epoch + 1}/{epochs}: loss {row['loss']:.4f}, train {100 * row['train_acc']:.2f}%, "
                    f"test {100 * test_acc:.2f}%, {seconds:.1f} s"
                )
            if (epoch + 1) % cfg.checkpoint_every and epoch + 1 < epochs:
                if ctx.is_main:
                    Metrics.of(metrics).write(out / METRICS_NAME)
                continue
            model.eval()
            if not ctx.is_main:  # rank 0 alone writes; the others wait until the files exist
                ctx.barrier()
                continue
            digest = save_checkpoint(
                ckpt_path,
                model,
                model_cfg,
                info,
                epoch=epoch + 1,
                metrics=metrics,
                train=metrics["train"],
                optimizer_state=optimizer.state_dict(),
            )
            metrics["checkpoint_hash"] = digest
            Metrics.of(metrics).write(out / METRICS_NAME)
            curve = _plot(metrics, out / CURVE_NAME)
            ctx.barrier()
    finally:
        if saved_flags is not None:
            _restore_flags(saved_flags)
    if not digest:  # nothing left to train (resumed at the end): report the existing checkpoint
        digest = resumed.hash if resumed is not None else ""
    model.cpu().eval()
    return TrainResult(
        checkpoint=ckpt_path,
        metrics_path=out / METRICS_NAME,
        curve=curve,
        model=model,
        config=model_cfg,
        test_acc=test_acc,
        hash=digest,
        metrics=metrics,
    )
