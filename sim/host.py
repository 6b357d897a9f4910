"""`SimBackend`: the host driver's backend that runs the generated AXI design in Verilator (bnn_hw.Accelerator).

One simulator process lives as long as the backend: a cocotb test (sim.benches.host) connects to a Unix socket and
serves requests (a frame transfer through cocotbext-axi's AxiStreamSource/Sink, an AXI4-Lite read or write through
AxiLiteMaster) while simulated time stands still between them. So the state a board keeps between calls (counters,
FRAME_IMAGES, a soft reset) is kept here too, and the same host code runs against the simulation and a board.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

from bnn_hw.sim.runner import CLOCK_NS, Bench, SimulationFailed

from bnn_hw.errors import BnnError


class SimBackend:
    """Backend (bnn_hw.accelerator.Backend) over a live Verilator simulation of `build_dir`."""

    def __init__(
        self,
        build_dir: str | Path,
        *,
        simulator: str = "verilator",
        work_dir: str | Path | None = None,
        in_pause: float = 0.0,
        out_pause: float = 0.0,
        seed: int = 1,
        connect_timeout: float = 900.0,
    ) -> None:
        from bnn_hw.sim.manifest import read_manifest

        typed, _ = read_manifest(build_dir)
        manifest = typed.to_json()  # the plain form the bench job is built from
        if typed.interface != "axis":
            raise BnnError(f"{build_dir} is not an AXI4-Stream build: regenerate it with --interface axis --axi-lite")
        build = Path(build_dir).resolve()
        work = Path(work_dir or build / "sim").resolve()
        work.mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="bnn-host-")
        sock_path = str(Path(self._tmp.name) / "host.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(sock_path)
        self._server.listen(1)
        self._server.settimeout(1.0)
        # Same build folder as the Python stream driver's: one Verilator build serves both.
        bench = Bench(
            simulator, [build / v for v in manifest["verilog"]], manifest["top"], work / f"build_py_{simulator}"
        )
        bench.build(log_file=work / f"build_py_{simulator}.log")
        env = {
            "BNN_HOST_SOCKET": sock_path,
            "BNN_HOST_CONFIG": json.dumps(
                {
                    "clock_ns": CLOCK_NS,
                    "in_pause": in_pause,
                    "out_pause": out_pause,
                    "seed": seed,
                    "result_bytes": manifest["axis"]["m_axis_tdata_bits"] // 8,
                    "timeout_cycles": 20
                    * (manifest["predicted"]["latency_cycles"] + 4096 * manifest["predicted"]["cycles_per_image"]),
                }
            ),
        }
        self._error: BaseException | None = None
        self.log_file = work / "host_sim.log"

        def serve() -> None:
            try:
                bench.run("bnn_hw.sim.benches.host", env=env, log_file=self.log_file, test_dir=work / "host_run")
            except (SimulationFailed, BnnError) as exc:
                self._error = exc

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        self._conn = None
        waited = 0.0
        while self._conn is None:
            try:
                self._conn, _ = self._server.accept()
            except TimeoutError:
                waited += 1.0
                if not self._thread.is_alive() or waited > connect_timeout:
                    raise BnnError(
                        f"the simulation did not start ({self._error or 'timeout'}); log {self.log_file}"
                    ) from None
        self._file = self._conn.makefile("rw")

    def _call(self, **request: Any) -> dict[str, Any]:
        if self._conn is None:
            raise BnnError("the simulation backend is closed")
        self._file.write(json.dumps(request) + "\n")
        self._file.flush()
        line = self._file.readline()
        if not line:
            self._thread.join(timeout=30)
            raise BnnError(f"the simulation ended unexpectedly ({self._error}); log {self.log_file}")
        reply = json.loads(line)
        if "error" in reply:
            raise BnnError(f"simulation: {reply['error']}")
        return reply

    def transfer(self, frame: bytes, result_bytes: int) -> bytes:
        return bytes.fromhex(self._call(op="transfer", frame=frame.hex(), result_bytes=result_bytes)["data"])

    def read_register(self, offset: int) -> int:
        return int(self._call(op="read", addr=offset)["value"])

    def write_register(self, offset: int, value: int) -> None:
        self._call(op="write", addr=offset, value=value)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._call(op="quit")
            except (BnnError, OSError):
                pass
            self._file.close()
            self._conn.close()
            self._conn = None
            self._thread.join(timeout=60)
            self._server.close()
            self._tmp.cleanup()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
