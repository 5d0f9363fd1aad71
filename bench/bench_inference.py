"""Inference speed on real 60 s soundscapes: each member's pure compute, end to end, and their ratio.

    python bench/bench_inference.py --bundle bundle/ [--files 4] [--rounds 3] [--int8] [--json .bench/inference.json]

Every figure comes from one run, so ratios compare like with like on a shared, noisy machine:
the variants take turns for --rounds rounds and each figure is the minimum over the rounds.
For each scoring variant:

- pure compute: each member (and the teacher) runs alone on the batch that scoring gives it for
  one 60 s file. For a CNN member that is 12 windows x the TTA shifts, for the teacher its
  sub-windows;
- end to end: `Scorer.score_files` over --files files (the S22 soundscape and 1min.wav in turn),
  from paths to final scores: decoding, front-end, members, blending and post-processing;
- overhead ratio: end-to-end seconds per file divided by the members' summed pure compute. The
  in-run ratio divides by the compute time measured inside the end-to-end run instead, which
  contention from other processes inflates on both sides alike.

Variants: the bundle as packaged (with and without the prefetch thread), the teacher's other
sub-window policy (cover or centre), and with --int8 the CNN members quantized to int8 for speed
only (the int8 gate of `pantanal package` decides whether a bundle may use them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "src"))

from infer.bundle import open_bundle  # noqa: E402
from infer.member import OnnxMember, file_sha256  # noqa: E402
from infer.pipeline import PreparedChunk, Scorer  # noqa: E402

SHARED = PROJECT_ROOT.parent / "shared" / "data"
DEFAULT_AUDIO = [
    SHARED / "birdclef2026-mini" / "train_soundscapes" / "BC2026_Train_0039_S22_20211231_201500.ogg",
    SHARED / "extra" / "opensoundscape" / "1min.wav",
]
CALIBRATION_AUDIO = [SHARED / "extra" / "opensoundscape" / name for name in
                     ("1min.wav", "birds_10s.wav", "rugr_drum.wav", "great_plains_toad.wav")]


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def pure_compute(scorer: Scorer, chunks: list[PreparedChunk]) -> dict[str, float]:
    """Time each member once alone on the batches that scoring gives it, in seconds per file."""
    seconds = {}
    for member in scorer.members:
        batches = [chunk.logmels[member.frontend.fingerprint()] for chunk in chunks]
        seconds[member.name] = timed(lambda: [member.logits(b) for b in batches])
    if scorer.teacher is not None:
        teacher = scorer.teacher
        seconds[teacher.name] = timed(lambda: [teacher.score_cut(c.teacher_input, c.teacher_per_window) for c in chunks])
    return seconds


def end_to_end(scorer: Scorer, paths: list[Path]) -> dict[str, float]:
    """Score `paths` from scratch; return seconds per file, end to end and inside the members."""
    scorer.compute_seconds = {name: 0.0 for name in scorer.compute_seconds}
    started = time.perf_counter()
    results = list(scorer.score_files(paths))
    elapsed = time.perf_counter() - started
    if len(results) != len(paths) or any(not np.isfinite(r.scores).all() for r in results):
        raise RuntimeError("the end-to-end run lost a file or produced non-finite scores")
    return {"seconds_per_file": elapsed / len(paths),
            "in_run_compute_per_file": sum(scorer.compute_seconds.values()) / len(paths)}


def measure(scorers: list[tuple[str, Scorer]], probe: Path, paths: list[Path], rounds: int) -> list[dict]:
    """Measure every variant once per round, variants taking turns, and keep each figure's minimum.

    On a shared machine other processes only ever add time, so the minimum over rounds is the
    closest figure to an idle machine, and taking turns exposes every variant to the same load.
    """
    chunks = {name: [c for c in scorer.prepare_files([probe]) if isinstance(c, PreparedChunk)] for name, scorer in scorers}
    for name, scorer in scorers:  # warm-up: first runs allocate buffers and interpreters
        pure_compute(scorer, chunks[name])
    compute: dict[str, list[dict[str, float]]] = {name: [] for name, _ in scorers}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in scorers}
    for round_index in range(rounds):
        for name, scorer in scorers:
            compute[name].append(pure_compute(scorer, chunks[name]))
            runs[name].append(end_to_end(scorer, paths))
        print(f"round {round_index + 1} of {rounds} done", flush=True)
    rows = []
    for name, _ in scorers:
        best_compute = {member: min(c[member] for c in compute[name]) for member in compute[name][0]}
        best_run = min(runs[name], key=lambda r: r["seconds_per_file"])
        rows.append(report_row(name, best_compute, best_run))
    return rows


def int8_members(members: list[OnnxMember], cache: Path, threads: int | None) -> list[OnnxMember]:
    """Quantize the members to int8 once, caching the copies by the float32 file's sha256."""
    from harness.quantize import calibration_logmels, quantize_member

    cache.mkdir(parents=True, exist_ok=True)
    quantized = []
    for member in members:
        target = cache / f"{file_sha256(member.path)[:16]}.int8.onnx"
        if not target.is_file():
            print(f"quantizing {member.name} to int8 (cached in {target})", flush=True)
            quantize_member(member.path, target, calibration_logmels(member, CALIBRATION_AUDIO))
        quantized.append(OnnxMember(target, threads=threads, name=member.name))
    return quantized


def variants(bundle, args) -> list[tuple[str, Scorer]]:
    config = bundle.config
    found = [("bundle", Scorer(bundle.members, bundle.taxonomy, config, bundle.teacher)),
             ("bundle, no prefetch thread",
              Scorer(bundle.members, bundle.taxonomy, dataclasses.replace(config, prefetch_chunks=0), bundle.teacher))]
    other_policy = "cover" if config.teacher_sub_windows == "centre" else "centre"
    other = dataclasses.replace(config, teacher_sub_windows=other_policy)
    if bundle.teacher is not None:
        found.append((f"teacher {other_policy}", Scorer(bundle.members, bundle.taxonomy, other, bundle.teacher)))
    if args.int8:
        members = int8_members(bundle.members, PROJECT_ROOT / ".bench" / "int8", args.threads)
        found.append(("int8 (speed only)", Scorer(members, bundle.taxonomy, config, bundle.teacher)))
        if bundle.teacher is not None:
            found.append((f"int8 + teacher {other_policy}", Scorer(members, bundle.taxonomy, other, bundle.teacher)))
    return found


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        model = names[0] if names else model
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{model}, {os.cpu_count()} CPU(s), {platform.system()}, Python {platform.python_version()}, "
            f"onnxruntime {ort.__version__}, load average {load:.2f} at start")


def report_row(name: str, compute: dict[str, float], run: dict[str, float]) -> dict:
    total = sum(compute.values())
    per_file = run["seconds_per_file"]
    return {"variant": name, "compute_s": compute, "compute_total_s": total, "end_to_end_s": per_file,
            "files_per_minute": 60.0 / per_file, "overhead_ratio": per_file / total,
            "in_run_ratio": per_file / run["in_run_compute_per_file"]}


def print_rows(rows: list[dict]) -> None:
    for row in rows:
        members = ", ".join(f"{name} {seconds:.3f}" for name, seconds in row["compute_s"].items())
        print(f"\n{row['variant']}\n  pure compute per file (s): {members}; sum {row['compute_total_s']:.3f}")
        print(f"  end to end per file: {row['end_to_end_s']:.3f} s = {row['files_per_minute']:.1f} files/min; "
              f"overhead ratio {row['overhead_ratio']:.3f} (in-run {row['in_run_ratio']:.3f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=PROJECT_ROOT / "bundle", help="bundle folder (default: bundle/)")
    parser.add_argument("--audio", type=Path, nargs="+", default=DEFAULT_AUDIO, help="60 s files scored in turn")
    parser.add_argument("--files", type=int, default=4, help="files per end-to-end run (default: 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of measurements; each figure is the minimum (default: 3)")
    parser.add_argument("--threads", type=int, help="intra-op threads per member (default: all cores)")
    parser.add_argument("--int8", action="store_true", help="also time int8 copies of the CNN members")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    print(f"machine: {machine()}")
    bundle = open_bundle(args.bundle, threads=args.threads)
    paths = [args.audio[i % len(args.audio)] for i in range(args.files)]
    print(f"bundle {args.bundle} ({bundle.manifest_sha256[:12]}): {', '.join(e.name for e in bundle.entries)}; "
          f"TTA shifts {list(bundle.config.tta_shifts)}; {args.files} files: {', '.join(p.name for p in args.audio)}")
    rows = measure(variants(bundle, args), args.audio[0], paths, args.rounds)
    print_rows(rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "bundle": str(args.bundle), "files": args.files,
                                         "rounds": args.rounds, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
