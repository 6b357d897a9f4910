"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest

from bnn_hw.errors import BnnError


@pytest.fixture(scope="module")
def fashion():
    """Fashion-MNIST (train, test) from the Debian package; the test skips with the reason when it is missing."""
    from bnn_hw.datasets import load_dataset

    try:
        return load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    except BnnError as exc:
        pytest.skip(str(exc))
