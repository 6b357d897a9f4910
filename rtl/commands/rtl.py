"""`bnn-hw rtl`: generate the Verilog accelerator (bnn_top.v) and its manifest.json for a .bnn model."""

from __future__ import annotations

import argparse
from pathlib import Path

from bnn_hw.argtypes import int_range, positive_int
from bnn_hw.artifacts import Manifest
from bnn_hw.errors import BnnError, UsageError

DEFAULT_PE = DEFAULT_SIMD = "32"  # the same folding as `bnn-hw demo`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, nargs="?", help="exported model (.bnn); with --config: model.path")
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="output folder for bnn_top.v and manifest.json (default: the --config's OUT/rtl; else required)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="build configuration file (docs/build.md): folding and interface, model.path, OUT/rtl (default: none)",
    )
    parser.add_argument(
        "--pe",
        default=None,
        help="processing elements (output neurons in parallel): one value for every layer (capped "
        "at each layer's size; for convolutions the largest divisor of the output channels "
        "not above it) or a comma-separated list, one exact value per layer (default: 32)",
    )
    parser.add_argument(
        "--simd",
        default=None,
        help="input lanes per PE: one value (fitted like --pe; for convolutions a divisor of the "
        "input channels) or one exact value per layer (default: 32)",
    )
    parser.add_argument(
        "--auto",
        action="store_true",
        help="choose PE and SIMD per layer automatically (needs --target-cycles or --lut-budget)",
    )
    parser.add_argument(
        "--target-cycles",
        type=positive_int,
        default=None,
        help="with --auto: the cheapest folding whose every layer needs at most this many cycles per image "
        "(default: none)",
    )
    parser.add_argument(
        "--lut-budget",
        type=positive_int,
        default=None,
        help="with --auto: the fastest balanced folding whose estimated LUTs fit this budget (default: none)",
    )
    parser.add_argument(
        "--pixels-per-beat",
        type=positive_int,
        default=None,
        help="pixels per input beat (default: the first layer's SIMD)",
    )
    parser.add_argument(
        "--weights",
        choices=("auto", "block", "logic"),
        default="auto",
        help="weight memory style: block (a memory per layer, block RAM when large), logic (constant ROMs in LUTs "
        "beside the XNORs, for highly unfolded layers), auto (logic for memories that would need block RAM but are "
        "at most 32 words deep) (default: auto)",
    )
    parser.add_argument(
        "--debug-taps",
        action="store_true",
        help="add output ports tap<l>_valid/tap<l>_payload with each hidden layer's output beats",
    )
    parser.add_argument(
        "--interface",
        choices=("bare", "axis"),
        default="bare",
        help="top-level ports: bare valid/ready streams (clk, rst, pixels__*, result__*), or AXI4-Stream with "
        "Xilinx names (aclk, aresetn, s_axis_*, m_axis_*) plus a FuseSoC core and an IP-XACT component.xml "
        "(docs/rtl.md) (default: bare)",
    )
    parser.add_argument(
        "--axi-lite",
        action="store_true",
        help="with --interface axis: an AXI4-Lite register file (s_axi_*: ID, model hash, folding, counters, "
        "soft reset)",
    )
    parser.add_argument(
        "--frame-images",
        type=int_range(0, 2**16 - 1),
        default=0,
        help="with --interface axis: images per input frame (TLAST), 0 = any whole number (default 0)",
    )
    parser.add_argument(
        "--result-framing",
        choices=("image", "frame"),
        default="image",
        help="with --interface axis: m_axis TLAST on every result, or on the result of an input frame's last image "
        "(default: image)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    from bnn_hw.rtl.folding import fit_value, make_plan, parse_list

    from bnn_hw.model import load_model

    if args.config is not None:
        _apply_config(args)
    if args.model is None or args.out is None:
        raise UsageError("give the model and -o/--out (or a --config whose model.path names a .bnn file)")
    model = load_model(args.model)
    n = len(model.layers)
    if args.auto:
        from bnn_hw.rtl.autofold import auto_fold

        if args.pe is not None or args.simd is not None:
            raise UsageError("--auto chooses PE and SIMD itself: drop --pe/--simd or drop --auto")
        if (args.target_cycles is None) == (args.lut_budget is None):
            raise UsageError("--auto needs exactly one of --target-cycles N or --lut-budget N")
        pe, simd = auto_fold(
            model, target_cycles=args.target_cycles, lut_budget=args.lut_budget, pixels_per_beat=args.pixels_per_beat
        )
    else:
        if args.target_cycles is not None or args.lut_budget is not None:
            raise UsageError("--target-cycles and --lut-budget only apply with --auto")
        pe = parse_list(args.pe if args.pe is not None else DEFAULT_PE, n, "pe")
        simd = parse_list(args.simd if args.simd is not None else DEFAULT_SIMD, n, "simd")
        # One value for all layers is a wish, fitted to each layer; a per-layer list is taken literally.
        if _single(args.pe) and pe[0] >= 1:
            pe = [fit_value(p, layer, "pe") for p, layer in zip(pe, model.layers, strict=True)]
        if _single(args.simd) and simd[0] >= 1:
            simd = [fit_value(v, layer, "simd") for v, layer in zip(simd, model.layers, strict=True)]
    # also refuses signals too wide for Amaranth, at once
    plan = make_plan(model, pe, simd, args.pixels_per_beat, args.weights)
    record = {
        "model": str(args.model),
        "pe": ",".join(map(str, pe)),
        "simd": ",".join(map(str, simd)),
        "pixels_per_beat": plan.pixels_per_beat,
        "weights": args.weights,
        "debug_taps": bool(args.debug_taps),
        "auto": bool(args.auto),
        "target_cycles": args.target_cycles,
        "lut_budget": args.lut_budget,
        "requested_pe": args.pe,
        "requested_simd": args.simd,
        "interface": args.interface,
        "axi_lite": bool(args.axi_lite),
        "frame_images": args.frame_images,
        "result_framing": args.result_framing,
    }
    if not 0 <= args.frame_images < 2**16:
        raise BnnError(f"--frame-images must be 0..65535 (0 = any number of images per frame), got {args.frame_images}")

    from bnn_hw.rtl.generate import generate

    manifest = generate(
        model,
        plan,
        args.out,
        record,
        debug_taps=args.debug_taps,
        progress=not args.quiet,
        interface=args.interface,
        axi_lite=args.axi_lite,
        frame_images=args.frame_images,
        result_framing=args.result_framing,
    )
    if not args.quiet:
        _summary(manifest, args.out)
    return 0


def _apply_config(args: argparse.Namespace) -> None:
    """Fill the folding and interface options from a build configuration; options also given on the command line
    must agree with it (one line otherwise)."""
    from bnn_hw.rtl.folding import fit_value

    from bnn_hw.config import load_config
    from bnn_hw.model import load_model

    cfg = load_config(args.config)
    if args.model is None:
        if cfg.model.path is None:
            raise BnnError(f"{args.config}: model.path is not a .bnn file; give the model on the command line")
        args.model = cfg.model.path
    if args.out is None:
        args.out = cfg.out / "rtl"
    f = cfg.folding
    given = [
        o for o in ("pe", "simd", "target_cycles", "lut_budget", "pixels_per_beat") if getattr(args, o) is not None
    ]
    if given or args.auto:
        raise BnnError(f"--config sets the folding: drop --{(given or ['auto'])[0].replace('_', '-')} or drop --config")
    if f.auto:
        args.auto, args.target_cycles, args.lut_budget = True, f.target_cycles, f.lut_budget
    else:
        model = load_model(args.model)
        exact = f.per_layer(len(model.layers), lambda v, i, what: fit_value(v, model.layers[i], what))
        if exact is not None:
            args.pe, args.simd = (",".join(map(str, v)) for v in exact)
        else:
            args.pe = None if f.pe is None else str(f.pe)
            args.simd = None if f.simd is None else str(f.simd)
    if f.weights != "auto":
        if args.weights not in ("auto", f.weights):
            raise BnnError(f"--config sets folding.weights: {f.weights}: drop --weights or drop --config")
        args.weights = f.weights
    args.pixels_per_beat = cfg.interface.pixels_per_beat
    args.debug_taps = args.debug_taps or cfg.interface.debug_taps
    i = cfg.interface
    if i.kind != "bare" or i.axi_lite or i.frame_images or i.result_framing != "image":
        if (args.interface, args.axi_lite, args.frame_images, args.result_framing) != ("bare", False, 0, "image"):
            raise BnnError("--config sets the interface: drop --interface/--axi-lite/--frame-images/--result-framing")
        args.interface, args.axi_lite = i.kind, i.axi_lite
        args.frame_images, args.result_framing = i.frame_images, i.result_framing


def _single(text: str | None) -> bool:
    return text is None or "," not in text


def _summary(man: Manifest, out: Path) -> None:
    print(f"{out / man.verilog[0]}  (model {man.model_name} {man.model_hash[:12]})")
    print(
        f"{'layer':>5} {'kind':<6} {'MW':>6} {'MH':>6} {'PE':>4} {'SIMD':>4} {'NF':>5} {'SF':>5} "
        f"{'cycles':>8} {'weight bits':>12} {'weights':>7}"
    )
    for d in man.layers:
        print(
            f"{d['index']:>5} {d['kind']:<6} {d['MW']:>6} {d['MH']:>6} {d['PE']:>4} {d['SIMD']:>4} {d['NF']:>5} "
            f"{d['SF']:>5} {d['cycles_per_image']:>8} {d['weight_memory_bits']:>12} {d['weight_style']:>7}"
        )
    p = man.predicted
    print(
        f"cycles/image {p.cycles_per_image} (limited by {p.limited_by}), latency {p.latency_cycles} "
        f"cycles; {man.beats_per_image} input beats of {man.pixels_per_beat} pixels; "
        f"memory {man.memory_bits.total} bits; {man.generation_seconds} s"
    )
