"""bnn_hw.datasets: real files (Debian Fashion-MNIST, scikit-learn digits), torchvision layouts, every error path."""

from __future__ import annotations

import gzip
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bnn_hw import datasets
from bnn_hw.datasets import DATASETS, load_dataset, read_idx
from bnn_hw.errors import BnnError

DEBIAN = datasets.DEBIAN_FASHION_MNIST
needs_debian = pytest.mark.skipif(
    not (DEBIAN / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"Debian package dataset-fashion-mnist not installed ({DEBIAN} missing)",
)


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def make_idx_set(folder: Path, n_train: int = 7, n_test: int = 5, compress: bool = False, seed: int = 1):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    made = {}
    for split, (img, lab), n in (
        ("train", datasets._IDX_FILES["train"], n_train),
        ("test", datasets._IDX_FILES["test"], n_test),
    ):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(folder / img, images, compress)
        write_idx(folder / lab, labels, compress)
        made[split] = (images, labels)
    return made


def test_registry_lists_all_names():
    assert set(DATASETS) == {"fashion-mnist", "digits", "mnist", "cifar10", "svhn"}


@needs_debian
def test_fashion_mnist_from_debian_files(tmp_path, monkeypatch):
    monkeypatch.setenv("BNN_HW_CACHE", str(tmp_path))
    train = load_dataset("fashion-mnist", "train")
    test = load_dataset("fashion-mnist", "test")
    assert train.images.shape == (60000, 28, 28, 1) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28, 1) and test.labels.dtype == np.int64
    # The published first labels of Fashion-MNIST (ankle boot, T-shirt, T-shirt, dress, ...) and its balance.
    assert train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert test.labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert np.bincount(train.labels).tolist() == [6000] * 10
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert train.info.classes[9] == "Ankle boot" and train.info.input_shape == (28, 28, 1)
    # Decompressed once into torchvision's layout; a second load reuses the files.
    raw = tmp_path / "FashionMNIST" / "raw"
    stamp = (raw / "train-images-idx3-ubyte").stat().st_mtime_ns
    with gzip.open(DEBIAN / "train-images-idx3-ubyte.gz", "rb") as f:
        assert (raw / "train-images-idx3-ubyte").read_bytes() == f.read()
    again = load_dataset("fashion-mnist", "train")
    assert (raw / "train-images-idx3-ubyte").stat().st_mtime_ns == stamp
    assert np.array_equal(again.images, train.images)
    assert not list(raw.glob("*.tmp"))


def test_fashion_mnist_missing_debian_files(tmp_path, monkeypatch):
    monkeypatch.setenv("BNN_HW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(BnnError, match=r"apt-get install dataset-fashion-mnist.*--data-dir"):
        load_dataset("fashion-mnist", "train")


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("layout", ["root", "raw"])
def test_idx_from_data_dir_torchvision_layout(tmp_path, compress, layout):
    folder = tmp_path / "MNIST" / "raw"
    made = make_idx_set(folder, compress=compress)
    data_dir = tmp_path if layout == "root" else folder
    for split in ("train", "test"):
        ds = load_dataset("mnist", split, data_dir)
        images, labels = made[split]
        assert np.array_equal(ds.images[..., 0], images)
        assert np.array_equal(ds.labels, labels.astype(np.int64))
        assert ds.info.name == "mnist"
    fm = make_idx_set(tmp_path / "fm" / "FashionMNIST" / "raw", seed=2)
    assert np.array_equal(load_dataset("fashion-mnist", "test", tmp_path / "fm").images[..., 0], fm["test"][0])


def test_missing_dataset_dir(tmp_path):
    with pytest.raises(BnnError, match=r"does not exist.*MNIST/raw"):
        load_dataset("mnist", "train", tmp_path / "missing")
    with pytest.raises(BnnError, match=r"missing train-images-idx3-ubyte, train-labels-idx1-ubyte"):
        load_dataset("mnist", "train", tmp_path)
    with pytest.raises(BnnError, match=r"mnist needs --data-dir"):
        load_dataset("mnist", "train")
    with pytest.raises(BnnError, match=r"cifar10: missing data_batch_1.*test_batch|cifar10: missing data_batch_1"):
        load_dataset("cifar10", "train", tmp_path)
    with pytest.raises(BnnError, match=r"svhn: missing test_32x32.mat"):
        load_dataset("svhn", "test", tmp_path)
    with pytest.raises(BnnError, match=r"cifar10 needs --data-dir"):
        load_dataset("cifar10", "test")


def test_unknown_names():
    with pytest.raises(BnnError, match=r"unknown dataset 'imagenet'; choose from: fashion-mnist, digits"):
        load_dataset("imagenet", "train")
    with pytest.raises(BnnError, match=r"unknown split 'val'; choose from: train, test"):
        load_dataset("digits", "val")


def test_corrupt_idx(tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    make_idx_set(folder)
    (folder / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 10)
    with pytest.raises(BnnError, match="truncated|data bytes"):
        load_dataset("mnist", "test", tmp_path)
    (folder / "t10k-images-idx3-ubyte").write_bytes(b"GIF89a....")
    with pytest.raises(BnnError, match="bad magic"):
        read_idx(folder / "t10k-images-idx3-ubyte")
    (folder / "t10k-images-idx3-ubyte").unlink()
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))  # 4 images, 5 labels
    with pytest.raises(BnnError, match="do not form an image/label pair"):
        load_dataset("mnist", "test", tmp_path)


def test_digits_exact_scaling_and_fixed_split():
    from sklearn.datasets import load_digits

    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert train.images.shape[1:] == (8, 8, 1) and train.images.dtype == np.uint8
    assert len(train) + len(test) == 1797 and len(test) == 359
    raw = load_digits()
    # Reassemble the split: every original image appears exactly once, scaled exactly (v*255+8)//16.
    expected = ((raw.images.astype(np.int64) * 255 + 8) // 16).astype(np.uint8)
    assert set(np.unique(expected).tolist()) >= {0, 255}
    allimg = np.concatenate([train.images[..., 0], test.images[..., 0]])
    alllab = np.concatenate([train.labels, test.labels])
    key = {(img.tobytes(), int(lab)) for img, lab in zip(expected, raw.target, strict=True)}
    got = [(img.tobytes(), int(lab)) for img, lab in zip(allimg, alllab, strict=True)]
    assert set(got) == key
    again = load_dataset("digits", "test")
    assert np.array_equal(again.images, test.images) and np.array_equal(again.labels, test.labels)


def test_cifar10_and_svhn_from_torchvision_layout(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, 3).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
        batches.append((data, labels))
    train = load_dataset("cifar10", "train", tmp_path)
    assert train.images.shape == (15, 32, 32, 3)
    data, labels = batches[0]
    assert np.array_equal(train.images[0], data[0].reshape(3, 32, 32).transpose(1, 2, 0))
    assert train.labels[:3].tolist() == labels
    assert load_dataset("cifar10", "test", tmp_path).labels.tolist() == batches[-1][1]

    from scipy.io import savemat

    x = rng.integers(0, 256, (32, 32, 3, 4), dtype=np.uint8)
    savemat(tmp_path / "test_32x32.mat", {"X": x, "y": np.array([[10], [1], [9], [10]], dtype=np.uint8)})
    svhn = load_dataset("svhn", "test", tmp_path)
    assert svhn.labels.tolist() == [0, 1, 9, 0]
    assert np.array_equal(svhn.images[2], x[..., 2])


def test_datasets_module_imports_no_torch():
    code = "import sys, bnn_hw.datasets as d; d.load_dataset('digits', 'test'); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
