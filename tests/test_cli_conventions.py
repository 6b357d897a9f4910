"""One set of conventions for every subcommand (docs/cli.md): names, defaults in --help, help text, exit codes,
progress in logs, and `train --resume` restoring its run's settings."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from bnn_hw.cli import COMMANDS, HelpFormatter, main, make_parser
from bnn_hw.progress import LineProgress

# The same thing has the same name everywhere: these spellings are the only ones a subcommand may show.
CANONICAL = {"out": ("-o", "--out"), "quiet": ("-q", "--quiet"), "json": ("--json",)}
RETIRED = {"--output", "--limit"}  # old spellings: accepted as hidden aliases at most


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def _help_string(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    return HelpFormatter(parser.prog)._get_help_string(action)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_option_has_help_and_shows_its_default(name):
    parser = make_parser(name)
    visible = [a for a in _options(parser) if a.help is not argparse.SUPPRESS]
    assert visible, name
    for action in _options(parser):
        if action.help is argparse.SUPPRESS:  # a hidden deprecated alias of a visible option with the same dest
            assert set(action.option_strings) <= RETIRED, (name, action.option_strings)
            assert any(v.dest == action.dest for v in visible), (name, action.option_strings)
            continue
        assert action.help and action.help.strip(), f"bnn-hw {name} {action.option_strings}: no help text"
        takes_value = action.nargs != 0
        if takes_value and not action.required:
            text = _help_string(parser, action)
            assert "default" in text, f"bnn-hw {name} {action.option_strings[-1]}: --help shows no default: {text!r}"
    for action in parser._actions:
        if not action.option_strings:  # positionals need help too
            assert action.help, f"bnn-hw {name} {action.dest}: no help text"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_same_names_for_the_same_things(name):
    parser = make_parser(name)
    for action in _options(parser):
        if action.help is argparse.SUPPRESS:
            continue
        assert not set(action.option_strings) & RETIRED, (name, action.option_strings)
        if action.dest in CANONICAL:
            assert tuple(action.option_strings) == CANONICAL[action.dest], (name, action.option_strings)
        if action.dest == "json":
            assert action.nargs != 0 and action.metavar == "PATH", f"bnn-hw {name} --json must take a PATH"
        if action.dest == "images":
            assert action.metavar == "N" and "the first N" in action.help, (name, action.help)
    # A short description first, details in the docs.
    assert parser.description and len(parser.description) < 160 and "\n" not in parser.description


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_output_is_short_and_complete(name, capsys):
    assert main([name, "--help"]) == 0
    text = capsys.readouterr().out
    head = text.split("options:")[0] if "options:" in text else text
    description = [ln for ln in head.split("\n\n")[1].splitlines()] if "\n\n" in head else []
    assert len(description) <= 3, f"bnn-hw {name} --help opens with {len(description)} lines of description"
    for action in _options(make_parser(name)):
        if action.help is not argparse.SUPPRESS:
            assert action.option_strings[-1] in text


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["train", "--epochs", "0"], "argument --epochs: must be an integer >= 1, got 0"),
        (["train", "--hidden", "0"], "argument --hidden"),
        (["train", "--threads", "0"], "argument --threads: must be an integer >= 1, got 0"),
        (["train", "--dropout-in", "1.5"], "argument --dropout-in: must be in [0, 1]"),
        (["train", "--lr-start", "nan"], "argument --lr-start: expected a finite number"),
        (["synth", "b", "--timeout", "0"], "argument --timeout: must be a number > 0, got 0"),
        (["report", "r", "--clock-mhz", "-1"], "argument --clock-mhz: must be a number > 0, got -1"),
        (["sweep", "m.bnn", "--jobs", "0"], "argument --jobs: must be an integer >= 1, got 0"),
        (["sim", "b", "--gap", "1"], "argument --gap: must be in [0, 1), got 1"),
        (["sim", "b", "--images", "-1"], "argument --images: must be an integer >= 0, got -1"),
        (["rtl", "m.bnn", "-o", "b", "--pixels-per-beat", "0"], "argument --pixels-per-beat"),
        (["bench", "cpu", "--mlp", "784-10"], "--mlp only apply to `bench gpu`"),
        (["bench", "cpu", "--matmul-size", "64", "--if-available"], "--matmul-size, --if-available only apply"),
        (["bench", "gpu", "--threads", "2"], "--threads only apply to `bench cpu`"),
        (["verify", "m.bnn", "--against", "c.pt", "--images", "0"], "argument --images: must be an integer >= 1"),
    ],
)
def test_usage_errors_exit_2_in_one_line(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_old_spellings_still_work_as_hidden_aliases():
    args = make_parser("export").parse_args(["c.pt", "--output", "x.bnn"])
    assert str(args.out) == "x.bnn"
    args = make_parser("verify").parse_args(["m.bnn", "--against", "c.pt", "--limit", "5"])
    assert args.images == 5
    assert make_parser("info").parse_args(["m.bnn", "--json"]).json == "-"


def test_rtl_default_folding_is_the_demos():
    from bnn_hw.rtl.commands import rtl

    from bnn_hw.flow import demo

    demo_args = make_parser("demo").parse_args([])
    assert (rtl.DEFAULT_PE, rtl.DEFAULT_SIMD) == (demo_args.pe, demo_args.simd) == ("32", "32")
    assert demo is not None


# ------------------------------------------------------------------------------------------ progress in a log


def test_line_progress_prints_few_whole_lines():
    stream = io.StringIO()
    bar = LineProgress(total=1000, desc="sim", unit="img", every=10, stream=stream)
    for _ in range(1000):
        bar.update(1)
    bar.set_postfix(loss="0.1")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert len(lines) == 10, lines  # 10 %, 20 %, ... 90 % and the final line
    assert lines[0].startswith("sim: 10% (100/1000 img") and lines[-1].startswith("sim: 100% (1000/1000 img")
    assert lines[-1].endswith("loss=0.1")


def test_train_progress_off_a_tty_is_lines(tmp_path, capsys):
    assert main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "-o", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("epoch 1/1:")]
    assert 1 <= len(lines) <= 5 and lines[-1].startswith("epoch 1/1: 100%"), err


# -------------------------------------------------------------------------------------- resume restores config


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "run"
    argv = ["train", "--dataset", "digits", "--hidden", "16", "--batch-size", "32", "--seed", "7"]
    argv += ["--lr-start", "0.01", "--augment", "shift", "--epochs", "1", "-o", str(out), "-q", "--threads", "1"]
    assert main(argv) == 0
    return out


def test_resume_restores_the_runs_configuration(digits_run, capsys):
    from bnn_hw.train.checkpoint import load_checkpoint

    capsys.readouterr()
    assert main(["train", "-o", str(digits_run), "--resume", "--epochs", "2", "-q"]) == 0
    ckpt = load_checkpoint(digits_run / "checkpoint.pt")
    assert ckpt.epoch == 2
    assert ckpt.config.hidden == [16] and ckpt.dataset.name == "digits"
    t = ckpt.train
    assert (t["batch_size"], t["seed"], t["lr_start"], t["augment"]) == (32, 7, 0.01, "shift")
    # Restating an option with the same value is fine; --epochs may change.
    assert main(["train", "-o", str(digits_run), "--resume", "--epochs", "3", "--seed", "7", "--hidden", "16"]) == 0


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--seed", "8"], "--resume: --seed 8 contradicts"),
        (["--hidden", "32"], "--resume: --hidden 32 contradicts"),
        (["--dataset", "fashion-mnist"], "--resume: --dataset fashion-mnist contradicts"),
        (["--lr-start", "0.5"], "trained with 0.01"),
        (["--no-lr-scale"], "--resume: --no-lr-scale contradicts"),
    ],
)
def test_resume_refuses_a_contradicting_flag_in_one_line(digits_run, capsys, extra, needle):
    before = (digits_run / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    assert main(["train", "-o", str(digits_run), "--resume", "--epochs", "9", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert (digits_run / "checkpoint.pt").read_bytes() == before


def test_resume_without_a_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["train", "-o", str(tmp_path / "none"), "--resume"]) == 1
    err = capsys.readouterr().err.strip()
    assert "--resume: no checkpoint" in err and len(err.splitlines()) == 1


def test_json_written_by_info_is_the_summary(tmp_path, capsys):
    from bnn_hw.model import save_model
    from bnn_hw.synthetic import random_model

    save_model(random_model((4, 4, 1), [8]), tmp_path / "m.bnn")
    assert main(["info", str(tmp_path / "m.bnn"), "--json", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["layers"]
    assert main(["info", str(tmp_path / "m.bnn"), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["layers"]
