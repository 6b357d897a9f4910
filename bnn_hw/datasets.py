"""Image data sets as uint8 numpy arrays, channels-last, read from local files only (nothing is downloaded).

Numpy-only on purpose: the trainer, the simulator benches and the GPU reference all feed the same real images to
their models without importing torch or torchvision. Files are read in torchvision's on-disk layout, so a user who
already has torchvision data sets can point `--data-dir` at them.

Sources:
- ``fashion-mnist``: the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist/*.gz``),
  decompressed once into ``<cache>/FashionMNIST/raw/`` (torchvision's layout; cache = ``$BNN_HW_CACHE`` or
  ``~/.cache/bnn-hw``), or ``<data_dir>/FashionMNIST/raw/``.
- ``digits``: scikit-learn's bundled 8x8 handwritten digits, values 0..16 mapped exactly to 0..255, with a fixed
  seeded train/test split.
- ``mnist``, ``cifar10``, ``svhn``: only from a user-given ``data_dir`` in torchvision's layout.
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bnn_hw.errors import BnnError

SPLITS = ("train", "test")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


def _hwc(shape: Any) -> tuple[int, int, int]:
    h, w, c = (int(v) for v in shape)
    return h, w, c


_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about its data: the image shape (H, W, C) and the class names."""

    name: str
    input_shape: tuple[int, int, int]
    classes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "input_shape": list(self.input_shape), "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        return cls(
            name=str(data["name"]),
            input_shape=_hwc(data["input_shape"]),
            classes=[str(c) for c in data["classes"]],
        )


@dataclass
class Dataset:
    """One split: uint8 images (N, H, W, C) channels-last, int64 labels (N,)."""

    images: np.ndarray
    labels: np.ndarray
    info: DatasetInfo

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, count: int | None) -> Dataset:
        """The first `count` examples (all when None): for quick runs and tests."""
        if count is None or count >= len(self):
            return self
        return Dataset(self.images[:count], self.labels[:count], self.info)


@dataclass(frozen=True)
class _Spec:
    info: DatasetInfo
    loader: Callable[[str, Path | None], tuple[np.ndarray, np.ndarray]]
    how_to_get: str


def cache_dir() -> Path:
    """Where decompressed data set files are kept: $BNN_HW_CACHE or ~/.cache/bnn-hw."""
    env = os.environ.get("BNN_HW_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bnn-hw"


# ------------------------------------------------------------------------------------------------------------ IDX


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format: magic, dims, big-endian uint8 data), optionally gzip-compressed."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise BnnError(f"cannot read {path}: {exc}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise BnnError(f"{path} is not an unsigned-byte IDX file (bad magic); replace it with the original file")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise BnnError(f"{path} is truncated (IDX header); replace it with the original file")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    count = int(np.prod(dims)) if dims else 0
    if len(data) != header + count:
        raise BnnError(
            f"{path} holds {len(data) - header} data bytes, expected {count} for shape {dims}; "
            f"replace it with the original file"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _decompress_once(src: Path, dst: Path) -> None:
    """Decompress `src` (.gz) into `dst`, atomically, so concurrent first runs never see a half-written file."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=dst.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
        os.replace(tmp, dst)
    except (OSError, EOFError) as exc:
        Path(tmp).unlink(missing_ok=True)
        raise BnnError(f"cannot decompress {src} into {dst}: {exc}") from exc


def _load_idx_pair(folder: Path, split: str, what: str, how: str) -> tuple[np.ndarray, np.ndarray]:
    stems = _IDX_FILES[split]
    paths = [_find_idx(folder, stem) for stem in stems]
    image_path, label_path = paths
    if image_path is None or label_path is None:
        missing = [s for s, p in zip(stems, paths, strict=True) if p is None]
        raise BnnError(f"{what}: missing {', '.join(missing)} (or .gz) in {folder}; {how}")
    images = read_idx(image_path)
    labels = read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise BnnError(
            f"{what}: {paths[0]} and {paths[1]} do not form an image/label pair "
            f"(shapes {images.shape} and {labels.shape})"
        )
    return images[..., None], labels.astype(np.int64)


def _fashion_mnist(split: str, data_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    how = _SPECS_HOW["fashion-mnist"]
    if data_dir is not None:
        return _load_idx_pair(_torchvision_folder(data_dir, "FashionMNIST"), split, "fashion-mnist", how)
    raw = cache_dir() / "FashionMNIST" / "raw"
    for stem in _IDX_FILES[split]:
        if not (raw / stem).is_file():
            src = DEBIAN_FASHION_MNIST / (stem + ".gz")
            if not src.is_file():
                raise BnnError(f"fashion-mnist: {src} not found (and no {raw / stem}); {how}")
            _decompress_once(src, raw / stem)
    return _load_idx_pair(raw, split, "fashion-mnist", how)


def _mnist(split: str, data_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    how = _SPECS_HOW["mnist"]
    if data_dir is None:
        raise BnnError(f"mnist needs --data-dir: {how}")
    return _load_idx_pair(_torchvision_folder(data_dir, "MNIST"), split, "mnist", how)


def _torchvision_folder(data_dir: Path, name: str) -> Path:
    """torchvision keeps <root>/<Name>/raw/; accept the root, <root>/<Name> or the raw folder itself."""
    for folder in (data_dir / name / "raw", data_dir / "raw", data_dir):
        if folder.is_dir() and any(folder.glob("*-idx*-ubyte*")):
            return folder
    return data_dir / name / "raw"


# ------------------------------------------------------------------------------------------------ other formats


def _digits(split: str, data_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise BnnError(f"digits needs scikit-learn: {_SPECS_HOW['digits']}") from exc
    bunch = load_digits()
    values = np.asarray(bunch.images)  # float 0..16 (integers)
    levels = np.rint(values).astype(np.int64)
    if not np.array_equal(levels, values) or levels.min() < 0 or levels.max() > 16:
        raise BnnError("scikit-learn's digits are not integers 0..16: unsupported scikit-learn version")
    images = ((levels * 255 + 8) // 16).astype(np.uint8)[..., None]  # 0 -> 0, 16 -> 255, rounded half up
    labels = np.asarray(bunch.target, dtype=np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(labels))
    n_test = int(round(len(labels) * DIGITS_TEST_FRACTION))
    chosen = order[n_test:] if split == "train" else order[:n_test]
    chosen = np.sort(chosen)
    return images[chosen], labels[chosen]


def _cifar10(split: str, data_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    how = _SPECS_HOW["cifar10"]
    if data_dir is None:
        raise BnnError(f"cifar10 needs --data-dir: {how}")
    folder = data_dir / "cifar-10-batches-py"
    if not folder.is_dir() and (data_dir / "test_batch").is_file():
        folder = data_dir
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise BnnError(f"cifar10: missing {', '.join(missing)} in {folder}; {how}")
    images, labels = [], []
    for name in names:
        try:
            with open(folder / name, "rb") as f:
                batch = pickle.load(f, encoding="bytes")  # the official CIFAR-10 python format is pickled
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
        except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
            raise BnnError(f"cifar10: {folder / name} is not a CIFAR-10 python batch ({exc}); {how}") from exc
        images.append(data.transpose(0, 2, 3, 1))
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def _svhn(split: str, data_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    how = _SPECS_HOW["svhn"]
    if data_dir is None:
        raise BnnError(f"svhn needs --data-dir: {how}")
    path = data_dir / f"{split}_32x32.mat"
    if not path.is_file():
        raise BnnError(f"svhn: missing {path.name} in {data_dir}; {how}")
    try:
        from scipy.io import loadmat
    except ImportError as exc:
        raise BnnError("svhn's .mat files need scipy: pip install scipy") from exc
    try:
        mat = loadmat(path)
        images = np.asarray(mat["X"], dtype=np.uint8).transpose(3, 0, 1, 2)  # (32, 32, 3, N) -> (N, 32, 32, 3)
        labels = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
    except (OSError, ValueError, KeyError) as exc:
        raise BnnError(f"svhn: {path} is not an SVHN cropped-digits .mat file ({exc}); {how}") from exc
    labels[labels == 10] = 0  # SVHN stores digit 0 as label 10 (torchvision maps it the same way)
    return np.ascontiguousarray(images), labels


# ------------------------------------------------------------------------------------------------------ registry

_FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_DIGITS = [str(i) for i in range(10)]
_CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

_SPECS_HOW = {
    "fashion-mnist": (
        "install the Debian package (`sudo apt-get install dataset-fashion-mnist`) or pass --data-dir "
        "with FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (torchvision layout)"
    ),
    "mnist": (
        "pass --data-dir DIR with MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] "
        "(torchvision's layout, e.g. from torchvision.datasets.MNIST(DIR, download=True) elsewhere)"
    ),
    "cifar10": (
        "pass --data-dir DIR with cifar-10-batches-py/{data_batch_1..5,test_batch} (torchvision's layout, "
        "the 'CIFAR-10 python version' from https://www.cs.toronto.edu/~kriz/cifar.html)"
    ),
    "svhn": (
        "pass --data-dir DIR with train_32x32.mat and test_32x32.mat (torchvision's layout, "
        "the cropped digits from http://ufldl.stanford.edu/housenumbers/)"
    ),
    "digits": "pip install scikit-learn (the 8x8 digits ship inside it)",
}

_SPECS: dict[str, _Spec] = {
    "fashion-mnist": _Spec(
        DatasetInfo("fashion-mnist", (28, 28, 1), _FASHION), _fashion_mnist, _SPECS_HOW["fashion-mnist"]
    ),
    "digits": _Spec(DatasetInfo("digits", (8, 8, 1), _DIGITS), _digits, _SPECS_HOW["digits"]),
    "mnist": _Spec(DatasetInfo("mnist", (28, 28, 1), _DIGITS), _mnist, _SPECS_HOW["mnist"]),
    "cifar10": _Spec(DatasetInfo("cifar10", (32, 32, 3), _CIFAR), _cifar10, _SPECS_HOW["cifar10"]),
    "svhn": _Spec(DatasetInfo("svhn", (32, 32, 3), _DIGITS), _svhn, _SPECS_HOW["svhn"]),
}

DATASETS: tuple[str, ...] = tuple(_SPECS)


def dataset_info(name: str) -> DatasetInfo:
    """Shape and classes of a data set, without reading it."""
    return _spec(name).info


def _spec(name: str) -> _Spec:
    if name not in _SPECS:
        raise BnnError(f"unknown dataset {name!r}; choose from: {', '.join(DATASETS)}")
    return _SPECS[name]


def load_dataset(name: str, split: str, data_dir: str | Path | None = None) -> Dataset:
    """Load one split ("train" or "test") of a data set as uint8 (N, H, W, C) images and int64 labels."""
    spec = _spec(name)
    if split not in SPLITS:
        raise BnnError(f"unknown split {split!r}; choose from: {', '.join(SPLITS)}")
    folder = Path(data_dir).expanduser() if data_dir is not None else None
    if folder is not None and not folder.is_dir():
        raise BnnError(f"data directory {folder} does not exist; {spec.how_to_get}")
    images, labels = spec.loader(split, folder)
    info = spec.info
    if images.shape[1:] != info.input_shape:
        raise BnnError(f"{name}: images have shape {images.shape[1:]}, expected {info.input_shape} (H, W, C)")
    if len(labels) and (labels.min() < 0 or labels.max() >= info.num_classes):
        raise BnnError(f"{name}: labels outside 0..{info.num_classes - 1}; the label file is not {name}'s")
    return Dataset(np.ascontiguousarray(images, dtype=np.uint8), labels.astype(np.int64), info)
