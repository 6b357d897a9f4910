"""Training runs on real data: determinism, resume, checkpoints, the `bnn-hw train` command and its error paths."""

from __future__ import annotations

import fractions
import hashlib
import json

import numpy as np
import pytest
import torch
from bnn_hw.train import loop
from bnn_hw.train.checkpoint import load_checkpoint, save_checkpoint
from bnn_hw.train.loop import TrainConfig, train

from bnn_hw.cli import main as cli_main
from bnn_hw.datasets import DEBIAN_FASHION_MNIST, Dataset, load_dataset
from bnn_hw.errors import BnnError

DIGITS = dict(dataset="digits", hidden=[32, 32], batch_size=64, progress=False, threads=1)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train"), load_dataset("digits", "test")


def run(tmp_path, name, digits, **kw):
    cfg = TrainConfig(out=tmp_path / name, **{**DIGITS, "epochs": 2, **kw})
    return train(cfg, *digits)


def state_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_same_seed_same_model(tmp_path, digits):
    a = run(tmp_path, "a", digits, seed=3, dropout_hidden=0.2, augment="shift-flip")
    b = run(tmp_path, "b", digits, seed=3, dropout_hidden=0.2, augment="shift-flip")
    c = run(tmp_path, "c", digits, seed=4, dropout_hidden=0.2, augment="shift-flip")
    assert state_equal(a.model, b.model)
    assert [r["loss"] for r in a.metrics["epochs"]] == [r["loss"] for r in b.metrics["epochs"]]
    assert not state_equal(a.model, c.model)


def test_resume_continues_exactly(tmp_path, digits):
    settings = {**DIGITS, "epochs": 3, "dropout_hidden": 0.1, "augment": "shift"}
    full = train(TrainConfig(out=tmp_path / "full", **settings), *digits)
    # The same run interrupted after its first epoch, then resumed: identical weights and metrics.
    assert _train_epochs(TrainConfig(out=tmp_path / "part", **settings), digits, stop_after=1) == 1
    resumed = train(TrainConfig(out=tmp_path / "part", resume=True, **settings), *digits)
    assert state_equal(full.model, resumed.model)
    assert [r["loss"] for r in resumed.metrics["epochs"]] == [r["loss"] for r in full.metrics["epochs"]]
    assert [r["test_acc"] for r in resumed.metrics["epochs"]] == [r["test_acc"] for r in full.metrics["epochs"]]


def test_checkpoint_every_saves_less_often_and_resumes_from_the_last_save(tmp_path, digits, capsys):
    settings = {**DIGITS, "epochs": 5, "augment": "shift"}
    full = train(TrainConfig(out=tmp_path / "full", **settings), *digits)
    sparse = train(TrainConfig(out=tmp_path / "sparse", checkpoint_every=2, **settings), *digits)
    assert state_equal(full.model, sparse.model)  # saving less often changes nothing else
    assert load_checkpoint(sparse.checkpoint).epoch == 5  # the last epoch is always saved
    # Interrupted at its first save (epoch 2), then resumed: the same run as the uninterrupted one.
    assert _train_epochs(TrainConfig(out=tmp_path / "part", checkpoint_every=2, **settings), digits, 1) == 2
    resumed = train(TrainConfig(out=tmp_path / "part", resume=True, checkpoint_every=2, **settings), *digits)
    assert state_equal(full.model, resumed.model)
    assert [r["loss"] for r in resumed.metrics["epochs"]] == [r["loss"] for r in full.metrics["epochs"]]
    with pytest.raises(BnnError, match="--checkpoint-every must be at least 1, got 0"):
        run(tmp_path, "bad", digits, checkpoint_every=0)
    # Resuming a finished run to fewer epochs trains nothing and says so.
    capsys.readouterr()
    again = train(TrainConfig(out=tmp_path / "full", resume=True, **{**settings, "epochs": 3}), *digits)
    assert state_equal(full.model, again.model)
    assert "already holds 5 epochs (>= --epochs 3): nothing to train" in capsys.readouterr().err


def _train_epochs(cfg, digits, stop_after):
    """Run `train` but interrupt it right after `stop_after` epochs' checkpoints are written."""
    calls = {"n": 0}
    real_plot = loop._plot

    def plot_then_stop(metrics, path):
        real_plot(metrics, path)
        calls["n"] += 1
        if calls["n"] == stop_after:
            raise KeyboardInterrupt

    loop._plot = plot_then_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            train(cfg, *digits)
    finally:
        loop._plot = real_plot
    return load_checkpoint(cfg.out / "checkpoint.pt").epoch


def test_checkpoint_round_trip(tmp_path, digits):
    result = run(tmp_path, "rt", digits, preset="cnn", hidden=[16], epochs=1)
    path = tmp_path / "rt" / "checkpoint.pt"
    ckpt = load_checkpoint(path)
    assert ckpt.hash == hashlib.sha256(path.read_bytes()).hexdigest() == result.hash
    assert ckpt.config == result.config and ckpt.epoch == 1 and not ckpt.model.training
    assert ckpt.dataset.name == "digits" and ckpt.dataset.classes[3] == "3"
    x = torch.from_numpy(digits[1].images.copy()).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        assert torch.equal(ckpt.model(x), result.model.eval()(x))
    metrics = json.loads((tmp_path / "rt" / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 1 and {"loss", "train_acc", "test_acc", "seconds"} <= set(metrics["epochs"][0])
    assert (tmp_path / "rt" / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
    # save_checkpoint of the reloaded model writes an equivalent file.
    save_checkpoint(tmp_path / "copy.pt", ckpt.model, ckpt.config, ckpt.dataset, epoch=1)
    with torch.no_grad():
        assert torch.equal(load_checkpoint(tmp_path / "copy.pt").model(x), ckpt.model(x))


def test_bad_checkpoints(tmp_path):
    with pytest.raises(BnnError, match="not found; train one"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BnnError, match=r"not a PyTorch checkpoint \(not a zip archive\)"):
        load_checkpoint(tmp_path / "junk.pt")
    (tmp_path / "model.bnn").write_bytes(b"BNNHWMDL" + bytes(100))
    with pytest.raises(BnnError, match="is an exported .bnn model, not a training checkpoint"):
        load_checkpoint(tmp_path / "model.bnn")
    torch.save({"obj": fractions.Fraction(1, 3)}, tmp_path / "pickled.pt")  # not on torch's weights-only list
    with pytest.raises(BnnError, match=r"not a readable bnn-hw checkpoint \(it holds Python objects"):
        load_checkpoint(tmp_path / "pickled.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(BnnError, match="not a bnn-hw checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save({"format": "bnn-hw-checkpoint", "version": 1, "config": {"preset": "mlp"}}, tmp_path / "cut.pt")
    with pytest.raises(BnnError, match="does not rebuild a model"):
        load_checkpoint(tmp_path / "cut.pt")


def test_nan_loss_stops_with_the_step(tmp_path, digits, monkeypatch):
    def nan_after_two(name):
        calls = {"n": 0}

        def fn(logits, labels):
            calls["n"] += 1
            loss = loop.squared_hinge(logits, labels)
            return loss * float("nan") if calls["n"] >= 3 else loss

        return fn

    monkeypatch.setattr(loop, "loss_fn", nan_after_two)
    with pytest.raises(BnnError, match=r"loss became nan at epoch 1, step 3 \(global step 3\); lower --lr-start"):
        run(tmp_path, "nan", digits)


def test_error_paths(tmp_path, digits):
    with pytest.raises(BnnError, match="unknown preset 'vgg'; choose from: mlp, cnn"):
        run(tmp_path, "e1", digits, preset="vgg")
    with pytest.raises(BnnError, match="unknown dataset 'cifar100'; choose from: fashion-mnist, digits"):
        train(TrainConfig(out=tmp_path / "e2", dataset="cifar100", progress=False))
    with pytest.raises(BnnError, match="mnist needs --data-dir"):
        train(TrainConfig(out=tmp_path / "e3", dataset="mnist", progress=False))
    with pytest.raises(BnnError, match="does not exist"):
        train(TrainConfig(out=tmp_path / "e4", dataset="mnist", data_dir=str(tmp_path / "nope"), progress=False))
    with pytest.raises(BnnError, match=r"needs images of at least 16x16"):
        run(tmp_path, "e5", digits, preset="paper-svhn")
    with pytest.raises(BnnError, match="unknown loss 'mse'"):
        run(tmp_path, "e6", digits, loss="mse")
    with pytest.raises(BnnError, match="--epochs must be at least 1"):
        run(tmp_path, "e7", digits, epochs=0)
    with pytest.raises(BnnError, match="--lr-start must be a positive number"):
        run(tmp_path, "e8", digits, lr_start=float("nan"))
    with pytest.raises(BnnError, match="unknown device 'tpu'"):
        run(tmp_path, "e9", digits, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(BnnError, match="sees no CUDA GPU"):
            run(tmp_path, "e10", digits, device="cuda")
    # Images of another shape than the data set's: refused before training.
    train_set, test_set = digits
    wrong = Dataset(np.zeros((4, 7, 7, 1), np.uint8), np.zeros(4, np.int64), train_set.info)
    with pytest.raises(BnnError, match=r"training images have shape \(7, 7, 1\), the model expects \(8, 8, 1\)"):
        train(TrainConfig(out=tmp_path / "e11", **{**DIGITS, "epochs": 1}), wrong, test_set)
    # Resume: nothing to resume, another architecture, another data set; an existing run is not overwritten.
    with pytest.raises(BnnError, match="--resume: no checkpoint"):
        run(tmp_path, "e12", digits, resume=True)
    run(tmp_path, "e13", digits, epochs=1)
    with pytest.raises(BnnError, match="already exists; pass --resume"):
        run(tmp_path, "e13", digits, epochs=1)
    with pytest.raises(BnnError, match="holds a different model"):
        run(tmp_path, "e13", digits, epochs=2, resume=True, hidden=[64])
    fake_info = type(train_set.info)("fashion-mnist", (8, 8, 1), train_set.info.classes)
    other = Dataset(train_set.images, train_set.labels, fake_info)
    with pytest.raises(BnnError, match="was trained on digits"):
        train(TrainConfig(out=tmp_path / "e13", resume=True, **{**DIGITS, "epochs": 2}), other, test_set)


def test_short_training_beats_chance(tmp_path, digits):
    result = run(tmp_path, "short", digits, hidden=[64, 64], batch_size=32, epochs=15)
    assert result.test_acc >= 0.80  # chance is 10 %


@pytest.mark.skipif(
    not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_fashion_mnist_slice_beats_chance(tmp_path):
    cfg = TrainConfig(
        out=tmp_path / "fm", hidden=[128], epochs=1, train_limit=6000, test_limit=2000, progress=False, threads=1
    )
    result = train(cfg)
    assert result.metrics["train"]["train_images"] == 6000
    assert result.test_acc >= 0.65  # chance is 10 %


def test_cli_train(tmp_path, capsys):
    out = tmp_path / "cli"
    code = cli_main(
        [
            "train",
            "--dataset",
            "digits",
            "--hidden",
            "16",
            "--epochs",
            "2",
            "--out",
            str(out),
            "--seed",
            "5",
            "--quiet",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    said = capsys.readouterr().out
    assert "test accuracy" in said and "checkpoint" in said
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt.config.hidden == [16] and ckpt.train["seed"] == 5 and ckpt.epoch == 2
    assert (
        cli_main(
            [
                "train",
                "--dataset",
                "digits",
                "--hidden",
                "16",
                "--epochs",
                "3",
                "--out",
                str(out),
                "--seed",
                "5",
                "--quiet",
                "--resume",
            ]
        )
        == 0
    )
    assert load_checkpoint(out / "checkpoint.pt").epoch == 3
    capsys.readouterr()
    assert cli_main(["train", "--preset", "nope", "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown preset 'nope'; choose from: mlp" in err
    assert cli_main(["train", "--dataset", "svhn", "--out", str(tmp_path / "x")]) == 1
    assert "svhn needs --data-dir" in capsys.readouterr().err
    assert cli_main(["train", "--hidden", "a,b"]) == 2
    assert "expected comma-separated integers" in capsys.readouterr().err


@pytest.mark.parametrize(
    "settings",
    [
        dict(preset="mlp", hidden=[32, 16]),
        dict(preset="cnn", hidden=[16], binarize_input=100),
        dict(preset="cnn", hidden=[16]),
    ],
    ids=["mlp", "cnn-binarized-input", "cnn-pixels"],
)
def test_trained_presets_export_bit_exact(tmp_path, digits, settings):
    """What the trainer makes, the exporter turns into an integer model the golden model agrees with on every image."""
    from bnn_hw.train.export import export_model

    from bnn_hw import golden

    result = run(tmp_path, "exp", digits, epochs=2, **settings)
    ckpt = load_checkpoint(result.checkpoint)
    model = export_model(ckpt.model, ckpt.dataset.classes)
    images = digits[1].images
    with torch.no_grad():
        scores = ckpt.model(torch.from_numpy(images.copy()).permute(0, 3, 1, 2).float())
    gold = golden.run(model, images)
    assert np.array_equal(gold.scores, scores.numpy().astype(np.int64))
    assert np.array_equal(gold.classes, scores.argmax(1).numpy())


def test_gpu_speed_flags_are_restored() -> None:
    """A GPU run switches TF32 and cuDNN autotuning on for itself only: the caller's settings come back."""
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    saved = loop._fast_gpu_flags()
    try:
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert torch.backends.cudnn.benchmark
    finally:
        loop._restore_flags(saved)
    assert (
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
        == before
        == saved
    )
