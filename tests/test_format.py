"""The model file: round trip, determinism and every kind of bad file rejected with one clear error."""

import json
import struct

import numpy as np
import pytest

from bnn_hw import golden
from bnn_hw.errors import BnnError
from bnn_hw.model import MAGIC, load_model, parse_model, save_model
from bnn_hw.packing import pack_bits, unpack_bits, words_for
from bnn_hw.synthetic import ConvSpec, random_images, random_model


@pytest.fixture
def model():
    return random_model((6, 6, 1), [ConvSpec(3, 3, 1, 1, 0, 2), 70], num_classes=5, seed=4)


def test_round_trip_is_identical_and_deterministic(tmp_path, model):
    digest = save_model(model, tmp_path / "a.bnn")
    again = load_model(tmp_path / "a.bnn")
    assert again.hash == digest
    save_model(again, tmp_path / "b.bnn")
    assert (tmp_path / "a.bnn").read_bytes() == (tmp_path / "b.bnn").read_bytes()
    images = random_images(model, 20)
    assert np.array_equal(golden.run(model, images).scores, golden.run(again, images).scores)
    assert again.classes == model.classes and again.layers[0].pool == 2


def test_packing_is_little_endian_and_zero_padded():
    bits = np.zeros((2, 70), bool)
    bits[0, 0] = bits[0, 65] = bits[1, 63] = True
    words = pack_bits(bits)
    assert words.shape == (2, words_for(70)) == (2, 2)
    assert words[0, 0] == 1 and words[0, 1] == 2 and words[1, 0] == 1 << 63 and words[1, 1] == 0
    assert np.array_equal(unpack_bits(words, 70), bits)


def _rewrite_header(data: bytes, edit) -> bytes:
    """Change the JSON header and fix up lengths and checksum, to reach the checks behind the checksum."""
    import hashlib

    _, version, hlen = struct.unpack_from("<8sII", data)
    header = json.loads(data[16 : 16 + hlen])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    body = struct.pack("<8sII", MAGIC, version, len(text)) + text + data[16 + hlen : -32]
    return body + hashlib.sha256(body).digest()


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda d: d[:40], "truncated|checksum"),
        (lambda d: d[:-1], "checksum"),
        (lambda d: d[:100] + bytes([d[100] ^ 1]) + d[101:], "checksum"),
        (lambda d: b"NOTAMODL" + d[8:], "magic"),
        (lambda d: d[:8] + struct.pack("<I", 99) + d[12:], "version 99"),
        (lambda d: b"", "truncated"),
        (lambda d: _rewrite_header(d, lambda h: h["layers"][1].update(in_shape=[17])), "does not match"),
        (lambda d: _rewrite_header(d, lambda h: h["layers"][0]["arrays"]["weights"].update(offset=10**6)), "outside"),
        (lambda d: _rewrite_header(d, lambda h: h.update(classes=["a"])), "class names"),
        (lambda d: _rewrite_header(d, lambda h: h["layers"][0].update(kind="lstm")), "unknown kind"),
        (lambda d: _rewrite_header(d, lambda h: h.pop("layers")), "malformed header"),
        (lambda d: _rewrite_header(d, lambda h: h["input"].update(binarize_at=128)), "input must be 'bits'"),
    ],
)
def test_bad_files_are_rejected_with_a_clear_error(tmp_path, model, damage, message):
    save_model(model, tmp_path / "m.bnn")
    with pytest.raises(BnnError, match=message) as info:
        parse_model(damage((tmp_path / "m.bnn").read_bytes()), "m.bnn")
    assert "\n" not in str(info.value)


def test_out_of_range_threshold_and_dirty_padding_are_rejected(model):
    bad = random_model((6, 6, 1), [70, 9], seed=1)
    bad.layers[1].thresholds[0] = 71 + 1
    with pytest.raises(BnnError, match="thresholds must lie"):
        bad.validate()
    bad = random_model((6, 6, 1), [70, 9], seed=1)
    bad.layers[1].weights[0, -1] |= np.uint64(1) << np.uint64(63)
    with pytest.raises(BnnError, match="padding bits"):
        bad.validate()


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(BnnError, match="not found"):
        load_model(tmp_path / "absent.bnn")
    with pytest.raises(BnnError, match="directory"):
        load_model(tmp_path)


def test_a_checkpoint_passed_as_a_model_says_export_it(tmp_path):
    import zipfile

    ckpt = tmp_path / "checkpoint.pt"
    with zipfile.ZipFile(ckpt, "w") as archive:  # torch.save writes a zip archive
        archive.writestr("checkpoint/data.pkl", b"x" * 200)
    with pytest.raises(
        BnnError,
        match=r"this is a PyTorch checkpoint, not a \.bnn model; export it first: "
        r"`bnn-hw export .*checkpoint\.pt`",
    ):
        load_model(ckpt)


def test_unpacking_32_bit_rows_gives_the_same_bits():
    bits = np.random.default_rng(5).random((3, 100)) < 0.5
    words = pack_bits(bits)
    assert np.array_equal(unpack_bits(words.view(np.uint32), 100), bits)
