"""Typed stage files (bnn_hw.artifacts): round trips, and one clear line for every way a file can be wrong."""

from __future__ import annotations

import json

import pytest

from bnn_hw import artifacts as a
from bnn_hw.errors import BnnError


def _verify() -> a.Verify:
    return a.Verify(
        model="m.bnn",
        model_hash="ab" * 32,
        checkpoint_sha256="cd" * 32,
        dataset="digits",
        split="test",
        images=3,
        layers=[a.LayerAgreement(layer=0, what="bits", agree=48, total=48)],
        classes_agree=3,
        golden_accuracy=2 / 3,
        pytorch_accuracy=2 / 3,
        classes=["a", "b"],
        confusion_matrix=[[1, 1], [0, 1]],
    )


def test_round_trip_through_a_file(tmp_path):
    v = _verify()
    path = v.write(tmp_path / "sub" / "verify.json")
    data = json.loads(path.read_text())
    assert data["schema"] == "bnn-hw verify report" and data["version"] == a.Verify.VERSION
    assert a.Verify.read(path) == v and v.bit_exact
    assert [p.name for p in tmp_path.rglob("*")] == ["sub", "verify.json"]  # no temporary file left


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda d: d.pop("images"), "missing key 'images'"),
        (lambda d: d.update(mismatches_total=0), "unknown key 'mismatches_total'"),
        (lambda d: d.update(images="3"), "key 'images' is the string '3', expected an integer"),
        (lambda d: d.update(images=True), "key 'images' is true/false, expected an integer"),
        (lambda d: d["layers"][0].pop("agree"), "missing key 'layers[0].agree'"),
        (lambda d: d["layers"][0].update(extra=1), "unknown key 'layers[0].extra'"),
        (lambda d: d.update(layers={}), "key 'layers' is an object, expected a list"),
        (lambda d: d.update(version=99), "key 'version' is 99: this bnn-hw reads version 1"),
        (lambda d: d.update(schema="bnn-hw sim report"), "key 'schema' is 'bnn-hw sim report'"),
    ],
)
def test_a_wrong_file_is_one_line_naming_file_and_key(tmp_path, change, needle):
    data = _verify().to_json()
    change(data)
    path = tmp_path / "verify.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BnnError) as exc:
        a.Verify.read(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: ") and needle in msg and "regenerate it with `bnn-hw verify" in msg, msg
    assert "\n" not in msg


def test_unreadable_files(tmp_path):
    with pytest.raises(BnnError, match="not found; write it with `bnn-hw verify"):
        a.Verify.read(tmp_path / "absent.json")
    (tmp_path / "cut.json").write_text('{"schema": "bnn-hw verify')
    with pytest.raises(BnnError, match=r"cut.json: not valid JSON \(.* at line 1\)"):
        a.Verify.read(tmp_path / "cut.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(BnnError, match="list.json: the file is a list, expected a JSON object"):
        a.Verify.read(tmp_path / "list.json")
    assert a.Verify.read_if(tmp_path / "absent.json") is None and a.Verify.read_if(None) is None


def test_optional_and_union_fields():
    """`int | None` takes null or an integer, nothing else; a float field takes an integer (JSON has one number)."""
    body = _verify().to_json()
    body.update(golden_accuracy=1)
    assert a.Verify.from_json(body).golden_accuracy == 1
    point = {"luts": None}
    with pytest.raises(BnnError, match="key 'luts' is the string 'x', expected int | None"):
        a._check("x", int | None, "luts")
    assert a._check(point["luts"], int | None, "luts") is None


def test_nested_stage_files_keep_their_schema():
    """sweep.json holds whole point records; each is checked as a point.json would be."""
    req = a.PointRequest(
        version=1,
        model_hash="h",
        pe=1,
        simd=1,
        target="ice40",
        flow="fast",
        simulate=0,
        random_images=False,
        pnr=None,
    )
    point = a.Point(
        request=req,
        pe=1,
        simd=1,
        pe_per_layer=[1],
        simd_per_layer=[1],
        lanes=1,
        target="ice40",
        flow="fast",
        cycles_per_image=9,
        latency_cycles=None,
        limited_by="layer 0",
        luts=5,
        lutram=None,
        ffs=2,
        brams=0,
        bram_unit="SB_RAM40_4K",
        carry=0,
        memory_bits=8,
        luts_per_layer={"0": 5},
        measured_cycles_per_image=None,
        sim_mismatches=None,
        fmax_mhz=None,
        images_per_s=None,
        clock_source=None,
        critical_path=None,
        worker=None,
        seconds={"rtl": 0.1},
        started=0.0,
        finished=1.0,
    )
    sweep = a.Sweep(
        model="m.bnn",
        model_hash="h",
        model_name="m",
        target="ice40",
        flow="fast",
        bnn_hw_commit=None,
        clock_mhz=200.0,
        clock="assumed",
        jobs=1,
        wall_seconds=1.0,
        reused=0,
        points=[point],
        pareto=[[1, 1]],
        failures=[],
    )
    data = sweep.to_json()
    assert data["points"][0]["schema"] == a.Point.SCHEMA
    assert a.Sweep.from_json(data) == sweep
    del data["points"][0]["request"]["flow"]
    with pytest.raises(BnnError, match=r"sweep.json: missing key 'points\[0\].request.flow'"):
        a.Sweep.from_json(data)


def test_numpy_values_are_written_as_plain_json(tmp_path):
    import numpy as np

    v = _verify()
    v.images = np.int64(3)  # type: ignore[assignment]
    v.golden_accuracy = np.float64(0.5)  # type: ignore[assignment]
    assert json.loads(v.write(tmp_path / "v.json").read_text())["images"] == 3


def test_every_stage_file_names_its_schema_version_file_and_command():
    seen = set()
    for cls in a.STAGE_FILES:
        assert cls.SCHEMA.startswith("bnn-hw ") and cls.VERSION >= 1 and cls.FILE.endswith(".json")
        assert cls.MAKE.startswith("bnn-hw "), cls
        seen.add(cls.SCHEMA)
    assert len(seen) == len(a.STAGE_FILES)
