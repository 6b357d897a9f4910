"""The model file: round trip, determinism and every kind of bad file rejected with one clear error."""

import json
import struct

import numpy as np
import pytest

from bnn_hw import golden
from bnn_hw.errors import BnnError
from bnn_hw.model import MAGIC, LayerKind, load_model, parse_model, save_model
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
        (lambda d: _rewrite_header(d, lambda h: h["layers"][0]["arrays"]["weights"].update(offset=10**6)), "unused"),
        (lambda d: _rewrite_header(d, lambda h: h.update(classes=["a"])), "class names"),
        (lambda d: _rewrite_header(d, lambda h: h["layers"][0].update(kind="lstm")), "kind must be"),
        (lambda d: _rewrite_header(d, lambda h: h.pop("layers")), 'missing the key "layers"'),
        (
            lambda d: _rewrite_header(d, lambda h: h["input"].update(binarize_at=128)),
            r"layers\[0\]\.input must be 'bits'",
        ),
    ],
)
def test_bad_files_are_rejected_with_a_clear_error(tmp_path, model, damage, message):
    save_model(model, tmp_path / "m.bnn")
    with pytest.raises(BnnError, match=message) as info:
        parse_model(damage((tmp_path / "m.bnn").read_bytes()), "m.bnn")
    assert "\n" not in str(info.value)


def test_out_of_range_threshold_and_dirty_padding_are_rejected(model):
    good = random_model((6, 6, 1), [70, 9], seed=1)
    last = good.layers[1]
    thresholds = last.thresholds.copy()
    thresholds[0] = 71 + 1
    bad = good.replace(layers=(good.layers[0], last.replace(thresholds=thresholds), *good.layers[2:]))
    with pytest.raises(BnnError, match="thresholds must lie"):
        bad.validate()
    weights = last.weights.copy()
    weights[0, -1] |= np.uint64(1) << np.uint64(63)
    bad = good.replace(layers=(good.layers[0], last.replace(weights=weights), *good.layers[2:]))
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


# ------------------------------------------------------------------------------ the strict header contract
# Each case is a defect a hostile or sloppy file once got past the loader (a traceback, or a file accepted although
# it says something the loader ignored or misread). Every one must now be refused with one BnnError line that names
# the key and the rule.


def _rewrite_text(data: bytes, edit) -> bytes:
    """Change the header's JSON text itself (for what json.loads/dumps cannot express) and fix up the checksum."""
    import hashlib

    _, version, hlen = struct.unpack_from("<8sII", data)
    text = edit(data[16 : 16 + hlen].decode().rstrip()).encode()
    text += b" " * (-len(text) % 8)
    body = struct.pack("<8sII", MAGIC, version, len(text)) + text + data[16 + hlen : -32]
    return body + hashlib.sha256(body).digest()


def _patch_array(data: bytes, layer: int, name: str, index: int, word: bytes) -> bytes:
    """Overwrite one 8-byte element of an array in the data section and fix up the checksum."""
    import hashlib

    _, _, hlen = struct.unpack_from("<8sII", data)
    header = json.loads(data[16 : 16 + hlen])
    at = 16 + hlen + header["layers"][layer]["arrays"][name]["offset"] + 8 * index
    body = data[:at] + word + data[at + 8 : -32]
    return body + hashlib.sha256(body).digest()


def _dense(h):
    return h["layers"][1]


def _arr(h, layer, name):
    return h["layers"][layer]["arrays"][name]


HEADER_DEFECTS = [
    # header JSON nested 1,000 deep: was RecursionError
    ("deep", lambda d: _rewrite_text(d, lambda t: t[:-1] + ',"x":' + "[" * 1000 + "]" * 1000 + "}"), "nests 1001"),
    (
        "deep-source",
        lambda d: _rewrite_header(
            d, lambda h: h.update(source={"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]})
        ),
        "nests",
    ),
    # a header that is not an object: was AttributeError
    ("list", lambda d: _rewrite_text(d, lambda t: "[1, 2]"), "must be a JSON object, got an array"),
    ("string", lambda d: _rewrite_text(d, lambda t: '"model"'), "must be a JSON object, got a string"),
    ("number", lambda d: _rewrite_text(d, lambda t: "3"), "must be a JSON object, got an integer"),
    ("null", lambda d: _rewrite_text(d, lambda t: "null"), "must be a JSON object, got null"),
    # Infinity or a number >= 2**63 in a shape: was OverflowError
    (
        "inf",
        lambda d: _rewrite_text(d, lambda t: t.replace('"in_shape":[70]', '"in_shape":[Infinity]')),
        "Infinity, which is not JSON",
    ),
    (
        "2**63",
        lambda d: _rewrite_header(d, lambda h: _dense(h).update(in_shape=[2**63])),
        r"layers\[1\]\.in_shape\[0\] must be 1\.\.65536",
    ),
    (
        "2**63-shape",
        lambda d: _rewrite_header(d, lambda h: _arr(h, 1, "weights").update(shape=[2**63, 2])),
        r"weights\.shape must be",
    ),
    (
        "1e400",
        lambda d: _rewrite_text(d, lambda t: t.replace('"source":{', '"source":{"x":1e400,')),
        "too large for a double",
    ),
    ("huge-digits", lambda d: _rewrite_header(d, lambda h: h.update(data_bytes=10**100)), "integer of 101 digits"),
    # binarize_at a string or a list: was TypeError; true and 127.5 were accepted and misread
    (
        "bin-str",
        lambda d: _rewrite_header(d, lambda h: h["input"].update(binarize_at="128")),
        r"input\.binarize_at must be a JSON integer, got a string",
    ),
    (
        "bin-list",
        lambda d: _rewrite_header(d, lambda h: h["input"].update(binarize_at=[128])),
        r"input\.binarize_at must be a JSON integer, got an array",
    ),
    (
        "bin-true",
        lambda d: _rewrite_header(d, lambda h: h["input"].update(binarize_at=True)),
        r"input\.binarize_at must be a JSON integer, got a boolean",
    ),
    (
        "bin-half",
        lambda d: _rewrite_header(d, lambda h: h["input"].update(binarize_at=127.5)),
        r"input\.binarize_at must be a JSON integer, got a number",
    ),
    (
        "bin-0",
        lambda d: _rewrite_header(d, lambda h: h["input"].update(binarize_at=0)),
        r"input\.binarize_at must be 1\.\.255",
    ),
    (
        "bin-256",
        lambda d: _rewrite_header(d, lambda h: h["input"].update(binarize_at=256)),
        r"input\.binarize_at must be 1\.\.255",
    ),
    # input.layout / input.dtype / format / version that the loader ignored
    (
        "layout",
        lambda d: _rewrite_header(d, lambda h: h["input"].update(layout="CHW")),
        r'input\.layout must be "HWC", got "CHW"',
    ),
    (
        "dtype",
        lambda d: _rewrite_header(d, lambda h: h["input"].update(dtype="float32")),
        r'input\.dtype must be "uint8"',
    ),
    ("format", lambda d: _rewrite_header(d, lambda h: h.update(format="onnx")), r'format must be "bnn-hw model"'),
    (
        "version-true",
        lambda d: _rewrite_header(d, lambda h: h.update(version=True)),
        "version must be a JSON integer, got a boolean",
    ),
    (
        "version-float",
        lambda d: _rewrite_header(d, lambda h: h.update(version=1.0)),
        "version must be a JSON integer, got a number",
    ),
    ("version-2", lambda d: _rewrite_header(d, lambda h: h.update(version=2)), r"version must be 1\.\.1, got 2"),
    # conv keys on a dense layer, extra/missing keys and arrays
    (
        "dense-pool",
        lambda d: _rewrite_header(d, lambda h: _dense(h).update(pool=2)),
        r'layers\[1\] has the unknown key "pool"',
    ),
    (
        "dense-kernel",
        lambda d: _rewrite_header(d, lambda h: _dense(h).update(kernel=3)),
        r'layers\[1\] has the unknown key "kernel"',
    ),
    (
        "dense-stride",
        lambda d: _rewrite_header(d, lambda h: _dense(h).update(stride=1)),
        r'layers\[1\] has the unknown key "stride"',
    ),
    (
        "dense-pad",
        lambda d: _rewrite_header(d, lambda h: _dense(h).update(pad_value=1)),
        r'layers\[1\] has the unknown key "pad_value"',
    ),
    (
        "conv-missing",
        lambda d: _rewrite_header(d, lambda h: h["layers"][0].pop("pool")),
        r'layers\[0\] is missing the key "pool"',
    ),
    (
        "top-extra",
        lambda d: _rewrite_header(d, lambda h: h.update(comment="hi")),
        'header has the unknown key "comment"',
    ),
    (
        "input-extra",
        lambda d: _rewrite_header(d, lambda h: h["input"].update(mean=0)),
        'input has the unknown key "mean"',
    ),
    ("no-source", lambda d: _rewrite_header(d, lambda h: h.pop("source")), 'header is missing the key "source"'),
    (
        "extra-array",
        lambda d: _rewrite_header(d, lambda h: _dense(h)["arrays"].update(bias=_arr(h, 1, "thresholds"))),
        r'layers\[1\]\.arrays has the unknown key "bias"',
    ),
    (
        "array-extra-key",
        lambda d: _rewrite_header(d, lambda h: _arr(h, 1, "weights").update(order="C")),
        r'weights has the unknown key "order"',
    ),
    # duplicate keys: a duplicate offset once made the thresholds be read from the weight words
    (
        "dup-offset",
        lambda d: _rewrite_text(d, lambda t: t.replace('"offset":', '"offset":0,"offset":', 2)),
        "twice in one object",
    ),
    ("dup-top", lambda d: _rewrite_text(d, lambda t: t[:-1] + ',"name":"other"}'), r'"name" twice'),
    # dtypes cast silently
    (
        "thr-u8",
        lambda d: _rewrite_header(d, lambda h: _arr(h, 1, "thresholds").update(dtype="<u8")),
        r'thresholds\.dtype must be "<i8", got "<u8"',
    ),
    (
        "w-i8",
        lambda d: _rewrite_header(d, lambda h: _arr(h, 1, "weights").update(dtype="<i8")),
        r'weights\.dtype must be "<u8", got "<i8"',
    ),
    (
        "w-native",
        lambda d: _rewrite_header(d, lambda h: _arr(h, 1, "weights").update(dtype="uint64")),
        r'weights\.dtype must be "<u8"',
    ),
    (
        "bias-big",
        lambda d: _rewrite_header(d, lambda h: _arr(h, 2, "bias").update(dtype=">i8")),
        r'bias\.dtype must be "<i8"',
    ),
    # floats and strings where integers belong
    (
        "in-float",
        lambda d: _rewrite_header(d, lambda h: _dense(h).update(in_shape=[27.9])),
        r"in_shape\[0\] must be a JSON integer, got a number",
    ),
    (
        "out-str",
        lambda d: _rewrite_header(d, lambda h: h["layers"][2].update(out_features="5")),
        r'out_features must be a JSON integer, got a string "5"',
    ),
    (
        "offset-float",
        lambda d: _rewrite_header(d, lambda h: _arr(h, 1, "weights").update(offset=0.0)),
        r"offset must be a JSON integer",
    ),
    (
        "kernel-true",
        lambda d: _rewrite_header(d, lambda h: h["layers"][0].update(kernel=True)),
        r"kernel must be a JSON integer, got a boolean",
    ),
    (
        "pad-bits",
        lambda d: _rewrite_header(d, lambda h: h["layers"][0].update(pad_value=300)),
        r"pad_value must be 0\.\.255",
    ),
    (
        "class-int",
        lambda d: _rewrite_header(d, lambda h: h["classes"].__setitem__(0, 7)),
        r"classes\[0\] must be a JSON string",
    ),
    ("name-null", lambda d: _rewrite_header(d, lambda h: h.update(name=None)), "name must be a JSON string, got null"),
    # the arrays must tile the data section
    (
        "overlap",
        lambda d: _rewrite_header(d, lambda h: _arr(h, 1, "thresholds").update(offset=_arr(h, 1, "weights")["offset"])),
        "overlaps",
    ),
    (
        "misaligned",
        lambda d: _rewrite_header(
            d, lambda h: _arr(h, 1, "weights").update(offset=_arr(h, 1, "weights")["offset"] + 4)
        ),
        "multiple of 8",
    ),
    ("data-bytes", lambda d: _rewrite_header(d, lambda h: h.update(data_bytes=h["data_bytes"] + 8)), "data_bytes says"),
    (
        "shape-lie",
        lambda d: _rewrite_header(d, lambda h: _arr(h, 1, "thresholds").update(shape=[69])),
        r"thresholds\.shape must be \[out_features\] = \[70\]",
    ),
    # dimension limits before anything is multiplied out or allocated
    (
        "huge-features",
        lambda d: _rewrite_header(d, lambda h: _dense(h).update(out_features=10**9)),
        r"out_features must be 1\.\.65536",
    ),
    (
        "huge-kernel",
        lambda d: _rewrite_header(d, lambda h: h["layers"][0].update(kernel=65536, padding=65536)),
        "fan-in of",
    ),
    # a bias word of -2**63 once passed |bias| <= 2**30 (np.abs(-2**63) is negative) and wrapped the scores
    (
        "bias-min",
        lambda d: _patch_array(d, 2, "bias", 1, struct.pack("<q", -(2**63))),
        r"layers\[2\]\.bias must lie in \[-2\*\*30, 2\*\*30\]",
    ),
    ("bias-big-word", lambda d: _patch_array(d, 2, "bias", 0, struct.pack("<q", 2**30 + 1)), r"bias must lie in"),
    (
        "thr-low",
        lambda d: _patch_array(d, 1, "thresholds", 0, struct.pack("<q", -1)),
        r"layers\[1\]\.thresholds must lie in \[0, 28\]",
    ),
    (
        "thr-pixels",
        lambda d: _patch_array(d, 0, "thresholds", 0, struct.pack("<q", 255 * 9 + 2)),
        r"layers\[0\]\.thresholds must lie in \[-2295, 2296\]",
    ),
]


@pytest.mark.parametrize("damage,message", [c[1:] for c in HEADER_DEFECTS], ids=[c[0] for c in HEADER_DEFECTS])
def test_the_header_contract_is_enforced(tmp_path, model, damage, message):
    save_model(model, tmp_path / "m.bnn")
    data = damage((tmp_path / "m.bnn").read_bytes())
    with pytest.raises(BnnError, match=message) as info:
        parse_model(data, "m.bnn")
    text = str(info.value)
    assert "\n" not in text and text.startswith("m.bnn: not a valid bnn-hw model file: ")


def test_the_header_length_limit_is_checked_before_parsing(tmp_path, model):
    import hashlib

    from bnn_hw.model import MAX_HEADER_BYTES

    save_model(model, tmp_path / "m.bnn")
    data = (tmp_path / "m.bnn").read_bytes()
    _, version, hlen = struct.unpack_from("<8sII", data)
    text = data[16 : 16 + hlen] + b" " * (MAX_HEADER_BYTES + 8 - hlen)
    body = struct.pack("<8sII", MAGIC, version, len(text)) + text + data[16 + hlen : -32]
    with pytest.raises(BnnError, match="header length 4194312 is invalid"):
        parse_model(body + hashlib.sha256(body).digest(), "m.bnn")


def test_whitespace_and_key_order_do_not_matter(tmp_path, model):
    """What the contract does not fix (key order, spacing) is free: such a file loads to the same model."""
    save_model(model, tmp_path / "m.bnn")
    data = (tmp_path / "m.bnn").read_bytes()
    pretty = _rewrite_text(data, lambda t: json.dumps(json.loads(t), indent=3))
    again = parse_model(pretty, "pretty.bnn")
    images = random_images(model, 10)
    assert np.array_equal(golden.run(again, images).scores, golden.run(model, images).scores)
    assert again.hash != model.hash  # the hash is the file's checksum


def test_a_model_is_immutable_and_its_hash_cannot_go_stale(model):
    import dataclasses

    before = model.hash
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.layers[1].bias = None
    with pytest.raises(ValueError, match="read-only"):
        model.layers[-1].bias[0] = 5
    with pytest.raises(ValueError):
        model.layers[-1].bias.setflags(write=True)
    with pytest.raises(TypeError, match="read-only"):
        model.source["x"] = 1
    bias = model.layers[-1].bias + 1
    changed = model.replace(layers=(*model.layers[:-1], model.layers[-1].replace(bias=bias)))
    assert changed.hash != before == model.hash
    assert model.layers[0].kind == "conv" and model.layers[0].kind is LayerKind.CONV


def test_models_built_in_python_are_checked_like_files():
    good = random_model((6, 6, 1), [70, 9], seed=1)
    last = good.layers[-1]
    with pytest.raises(BnnError, match=r"bias must lie in \[-2\*\*30"):
        good.replace(
            layers=(*good.layers[:-1], last.replace(bias=np.full(last.out_features, -(2**63), np.int64)))
        ).validate()
    with pytest.raises(BnnError, match="binarize_at must be null or an integer 1..255"):
        good.replace(binarize_at=True).validate()
    with pytest.raises(BnnError, match="a dense layer has no kernel"):
        good.replace(layers=(good.layers[0].replace(pool=2), *good.layers[1:])).validate()
    conv = random_model((6, 6, 1), [ConvSpec(3, 3, 1, 1, 0, 0), 4], seed=2).layers[0]
    scores = conv.replace(output="scores", thresholds=None, bias=np.zeros(3, np.int64))
    with pytest.raises(BnnError, match=r"layers\[0\]: the scores layer must be dense"):
        good.replace(layers=(scores,), input_shape=(6, 6, 1), classes=("a", "b", "c")).validate()
    unpadded = random_model((6, 6, 1), [ConvSpec(3, 3, 1, 0, 0, 0), 4], seed=2, binarize_at=128)
    unpadded.validate()  # pad_value 0 on a bits input is accepted where nothing is padded ...
    padded = unpadded.layers[0].replace(padding=1)
    with pytest.raises(BnnError, match=r"layers\[0\]\.pad_value must be -1 or 1 for a bits input"):
        unpadded.replace(layers=(padded, *unpadded.layers[1:])).validate()  # ... and refused where it is
    with pytest.raises(BnnError, match="kind must be dense or conv"):
        last.replace(kind="lstm")
    with pytest.raises(BnnError, match="JSON cannot hold"):
        good.replace(source={"accuracy": float("nan")})
