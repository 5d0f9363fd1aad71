"""Peak memory of `pantanal infer` on a day-long recording: the streaming benchmark behind `make bench`.

The script writes a 24-hour, 48 kHz, 16-bit mono RF64 file (8.3 GB declared, so the >4 GiB header
path is exercised too) as a sparse file: a short tone every ten minutes over digital silence, so it
takes a few megabytes of disk. It then runs `pantanal infer` on it with every output format, samples
the child's resident set size from /proc while it runs, and reports the peak from the kernel's
accounting (`wait4` ru_maxrss). It fails when the peak exceeds the limit (1 GiB by default).

Without `--model` it builds a stub ONNX model that honours the member contract (same front-end
and taxonomy, a single MatMul). The figure then covers decoding, resampling, windowing, the
front-end, the outputs and ONNX Runtime itself. Pass `--model` to include a real network's weights.

Linux only (/proc and sparse files). Run from the project root: `python bench/stream_rss.py --help`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TAXONOMY = PROJECT_ROOT.parent / "shared" / "data" / "birdclef2026-mini" / "taxonomy.csv"
MIB = 1024 * 1024


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0, help="length of the generated recording (default: 24)")
    parser.add_argument("--rate", type=int, default=48000, help="its sample rate in Hz (default: 48000)")
    parser.add_argument("--model", type=Path, help="ONNX model to run (default: a generated stub)")
    parser.add_argument("--limit-mib", type=float, default=1024.0, help="peak RSS that fails the benchmark (default: 1024)")
    parser.add_argument("--workdir", type=Path, help="where the recording and outputs go (default: a temporary folder)")
    return parser.parse_args()


def write_sparse_rf64(path: Path, hours: float, rate: int) -> int:
    """Write the recording; return its frame count. Only the tone bursts occupy disk blocks."""
    frames = int(hours * 3600 * rate)
    data_bytes = 2 * frames
    ds64 = np.array([data_bytes + 72, data_bytes, frames], dtype="<u8").tobytes() + b"\0\0\0\0"
    fmt = np.array([1, 1], dtype="<u2").tobytes() + np.array([rate, 2 * rate], dtype="<u4").tobytes() \
        + np.array([2, 16], dtype="<u2").tobytes()
    header = (b"RF64" + b"\xff\xff\xff\xff" + b"WAVE" + b"ds64" + len(ds64).to_bytes(4, "little") + ds64
              + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + b"\xff\xff\xff\xff")
    t = np.arange(rate) / rate
    burst = (0.3 * np.sin(2 * np.pi * 2500 * t) * 32767).astype("<i2").tobytes()
    with open(path, "wb") as handle:
        handle.write(header)
        for start in range(0, frames - rate, 600 * rate):
            handle.seek(len(header) + 2 * start)
            handle.write(burst)
        handle.truncate(len(header) + data_bytes)
    return frames


def build_stub_model(path: Path) -> None:
    """Write an ONNX member with the real front-end and taxonomy whose network is mean-pool + MatMul."""
    import onnx
    from onnx import TensorProto, helper

    sys.path.insert(0, str(PROJECT_ROOT / "src"))
    from infer.frontend import FrontendSpec
    from infer.taxonomy import Taxonomy

    spec = FrontendSpec()
    taxonomy = Taxonomy.from_csv(TAXONOMY)
    classes = len(taxonomy)
    weights = np.random.default_rng(0).standard_normal((spec.n_mels, classes)).astype(np.float32) * 0.01
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["logmel"], ["pooled"], axes=[1, 3], keepdims=0),
            helper.make_node("MatMul", ["pooled", "weights"], ["logits"]),
            helper.make_node("Unsqueeze", ["logits", "one"], ["frame_logits"]),
        ],
        "stub",
        [helper.make_tensor_value_info("logmel", TensorProto.FLOAT, ["batch", 1, spec.n_mels, spec.n_frames])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes]),
         helper.make_tensor_value_info("frame_logits", TensorProto.FLOAT, ["batch", 1, classes])],
        [helper.make_tensor("weights", TensorProto.FLOAT, weights.shape, weights.flatten()),
         helper.make_tensor("one", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    metadata = {
        "schema_version": "1", "classes": json.dumps(taxonomy.labels), "taxonomy_sha256": taxonomy.sha256,
        "frontend": spec.to_json(), "source_run_id": "bench-stub", "stage": "stub", "checkpoint_sha256": "0" * 64,
        "taxonomy": json.dumps(taxonomy.to_records()),
    }
    helper.set_model_props(model, {f"pantanal.{key}": value for key, value in metadata.items()})
    onnx.save(model, str(path))


def run_and_measure(command: list[str], env: dict[str, str]) -> tuple[int, float, float]:
    """Run `command`; return its exit status, peak RSS in MiB (kernel accounting) and seconds."""
    started = time.monotonic()
    child = subprocess.Popen(command, env=env)
    sampled_peak = 0.0
    last_print = started
    while child.poll() is None:
        sampled_peak = max(sampled_peak, _rss_mib(child.pid))
        if time.monotonic() - last_print > 60:
            print(f"  {time.monotonic() - started:6.0f} s: RSS {_rss_mib(child.pid):.0f} MiB", flush=True)
            last_print = time.monotonic()
        time.sleep(0.5)
    # poll() reaped the child; the kernel's high-water mark of every waited-for child remains.
    import resource

    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return child.returncode, max(peak_kib / 1024, sampled_peak), time.monotonic() - started


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="pantanal-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        recording = workdir / f"day_{args.hours:g}h_{args.rate}Hz.wav"
        frames = write_sparse_rf64(recording, args.hours, args.rate)
        model = args.model
        if model is None:
            model = workdir / "stub.onnx"
            build_stub_model(model)
        print(f"recording: {recording} ({args.hours:g} h at {args.rate} Hz, {2 * frames / 1e9:.1f} GB declared, "
              f"{os.stat(recording).st_blocks * 512 / MIB:.1f} MiB on disk); model: {model}", flush=True)

        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src")}
        command = [sys.executable, "-m", "infer.cli", "infer", str(recording), "--model", str(model),
                   "--out", str(workdir / "out"), "--no-progress"]
        status, peak_mib, seconds = run_and_measure(command, env)
        windows = json.loads((workdir / "out" / "summary.json").read_text())["files"][0]["rows"] if status == 0 else 0

    verdict = "PASS" if status == 0 and peak_mib <= args.limit_mib else "FAIL"
    print(f"{verdict}: peak RSS {peak_mib:.0f} MiB (limit {args.limit_mib:.0f} MiB) for {args.hours:g} h of audio, "
          f"{windows} windows, {seconds / 60:.1f} min, exit status {status}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
