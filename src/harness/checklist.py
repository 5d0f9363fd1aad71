"""`pantanal checklist`: the pre-submit checks of a bundle on a folder of recordings.

    pantanal checklist bundle/ --input test_soundscapes/ --sample-submission sample_submission.csv

The bundle is loaded through the field loader, which verifies every hash, and every input file is
scored through the same `Scorer`. The submission CSV is written and read back, and the checks run
on what was written:

1. the bundle loads (schema version, hashes, member classes);
2. the blend mode fits the post-processing (rank blending into probability-tuned post-processing
   fails);
3. coverage: every input file and every window has its row; a `--max-files` cap fails it;
4. every value is finite and within [0, 1];
5. the columns are `row_id` and the taxonomy in order, and equal `sample_submission.csv`'s header;
6. the projected time for the expected number of files fits the budget;
7. every CNN member's sha256 equals the export sha256 recorded on its registry run, when a registry
   is configured.

Results are printed, stored in the bundle manifest (`checklist`, `throughput`) unless
`--no-write`, and written to `--report` as JSON. The exit status is 0 when no check fails
(skipped checks do not fail) and 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from harness.member_registry import MemberRegistry, default_ledger_dir, resolve_tracking_uri
from infer.atomic import atomic_write_text
from infer.audio import AudioDecodeError, probe
from infer.budget import BudgetGuard
from infer.bundle import BundleError, MemberEntry, open_bundle
from infer.bundle_writer import update_manifest
from infer.command import collect_audio
from infer.outputs.submission import read_submission, write_submission
from infer.pipeline import FileScores, Scorer
from infer.postproc import compatibility_problem
from infer.windows import row_id

log = logging.getLogger(__name__)

PASS, FAIL, SKIP = "pass", "fail", "skip"
MAX_LISTED = 10


@dataclass
class CheckItem:
    """One check and what it found.

    Attributes:
        name: What is checked, as a short sentence.
        status: "pass", "fail" or "skip".
        details: Findings; on failure each names the cause.
    """

    name: str
    status: str
    details: list[str] = field(default_factory=list)


@dataclass
class ChecklistResult:
    """Every check of one run, plus the throughput measured while scoring."""

    bundle: str
    inputs: list[str]
    items: list[CheckItem]
    throughput: dict | None
    run_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def passed(self) -> bool:
        return all(item.status != FAIL for item in self.items)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "run_at": self.run_at, "bundle": self.bundle, "inputs": self.inputs,
                "items": [asdict(i) for i in self.items]}


def _listed(problems: list[str]) -> list[str]:
    if len(problems) <= MAX_LISTED:
        return problems
    return problems[:MAX_LISTED] + [f"... and {len(problems) - MAX_LISTED} more"]


def check_blend(scorer: Scorer) -> CheckItem:
    name = "blend mode fits the post-processing"
    problem = compatibility_problem(scorer.config.blend.mode, scorer.config.postproc)
    if problem:
        return CheckItem(name, FAIL, [problem])
    postproc = scorer.config.postproc
    tuned = "no post-processing" if postproc is None else f"post-processing tuned on {postproc.tuned_on}"
    return CheckItem(name, PASS, [f"blend mode {scorer.config.blend.mode}, {tuned}"])


def expected_row_ids(path: Path, window_seconds: float, scored: FileScores | None) -> tuple[list[str], str]:
    """List the row ids the file must have, from its header length (or its decoded length if the header has none)."""
    seconds, source = None, "header"
    try:
        seconds = probe(path).declared_seconds
    except AudioDecodeError:
        pass
    if seconds is None and scored is not None:
        seconds, source = scored.decoded_seconds, "decoded length (the header declares none)"
    if seconds is None:
        return [], "unknown (the file cannot be read)"
    count = max(1, math.ceil(seconds / window_seconds - 1e-9))
    return [row_id(path.stem, w, window_seconds) for w in range(count)], source


def check_coverage(
    paths: list[Path], scored_paths: list[Path], results: list[FileScores], failures: list[AudioDecodeError],
    written_row_ids: list[str], window_seconds: float,
) -> CheckItem:
    name = "every input file and window has its row"
    problems = []
    skipped = [p for p in paths if p not in set(scored_paths)]
    if skipped:
        problems.append(f"only {len(scored_paths)} of {len(paths)} files were scored (--max-files caps the input); "
                        f"unscored: {', '.join(p.name for p in skipped[:MAX_LISTED])}")
    problems += [f"{f.path.name} could not be decoded: {f.cause}" for f in failures]
    by_path = {r.path: r for r in results}
    written = set(written_row_ids)
    expected_total = 0
    for path in paths:
        expected, source = expected_row_ids(path, window_seconds, by_path.get(path))
        expected_total += len(expected)
        missing = [r for r in expected if r not in written]
        if missing:
            problems.append(f"{path.name}: {len(missing)} of {len(expected)} windows ({source}) have no row, "
                            f"e.g. {missing[0]}")
    duplicates = len(written_row_ids) - len(written)
    if duplicates:
        problems.append(f"{duplicates} row ids appear more than once (files with the same name in different folders?)")
    details = _listed(problems) or [f"{len(paths)} files, {expected_total} windows, {len(written_row_ids)} rows"]
    return CheckItem(name, FAIL if problems else PASS, details)


def check_values(row_ids: list[str], values: np.ndarray) -> CheckItem:
    name = "every score is finite and within [0, 1]"
    problems = []
    nonfinite = ~np.isfinite(values)
    if nonfinite.any():
        rows = np.flatnonzero(nonfinite.any(axis=1))
        problems.append(f"{int(nonfinite.sum())} NaN or infinite values in {len(rows)} rows, e.g. {row_ids[rows[0]]}")
    with np.errstate(invalid="ignore"):
        outside = np.isfinite(values) & ((values < 0) | (values > 1))
    if outside.any():
        rows = np.flatnonzero(outside.any(axis=1))
        problems.append(f"{int(outside.sum())} values outside [0, 1] in {len(rows)} rows, e.g. {row_ids[rows[0]]} "
                        f"(min {np.nanmin(values):.4g}, max {np.nanmax(values):.4g})")
    if not problems:
        return CheckItem(name, PASS, [f"{values.size} values, min {values.min():.4g}, max {values.max():.4g}"] if values.size else [])
    return CheckItem(name, FAIL, problems)


def check_columns(header: list[str], labels: list[str], sample_header: list[str] | None) -> CheckItem:
    """`header` is the written CSV's header without `row_id`."""
    name = "columns are the taxonomy in order and match sample_submission.csv"
    problems = []
    if header != labels:
        problems.append(_first_difference("written columns", header, "taxonomy order", labels))
    if sample_header is None:
        details = ["no sample_submission.csv given; compared with the taxonomy only"]
    elif ["row_id"] + header != sample_header:
        problems.append(_first_difference("written header", ["row_id"] + header, "sample_submission.csv", sample_header))
        details = []
    else:
        details = [f"row_id + {len(header)} classes, equal to sample_submission.csv"]
    return CheckItem(name, FAIL if problems else PASS, problems or details)


def _first_difference(name_a: str, a: list[str], name_b: str, b: list[str]) -> str:
    if len(a) != len(b):
        return f"{name_a} has {len(a)} columns, {name_b} has {len(b)}"
    index = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    return f"{name_a} differ from {name_b} first at column {index + 1}: {a[index]!r} where {b[index]!r} is expected"


def check_budget(
    files_scored: int, elapsed_s: float, startup_s: float, expected_files: int, budget_minutes: float
) -> tuple[CheckItem, dict | None]:
    name = f"projected time for {expected_files} files is within {budget_minutes:g} min"
    if files_scored == 0:
        return CheckItem(name, FAIL, ["no file was scored, so no time can be projected"]), None
    guard = BudgetGuard(expected_files, budget_minutes, sample_files=files_scored, action="warn", startup_s=startup_s)
    check = guard.after_file(files_scored, elapsed_s)
    throughput = {
        "files_per_minute": round(check.files_per_minute, 2),
        "seconds_per_file": round(elapsed_s / files_scored, 3),
        "files": files_scored,
        "startup_s": round(startup_s, 2),
        "projected_minutes": round(check.projected_s / 60, 2),
        "expected_files": expected_files,
        "budget_minutes": budget_minutes,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s), {platform.system()}",
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    detail = (f"{check.files_per_minute:.1f} files/min on {files_scored} file(s), start-up {startup_s:.1f} s: "
              f"projected {check.projected_s / 60:.1f} min for {expected_files} files")
    return CheckItem(name, PASS if check.within_budget else FAIL, [detail]), throughput


def check_registry(entries: list[MemberEntry], registry: MemberRegistry | None) -> CheckItem:
    name = "member hashes match their registry entries, and no member was rejected"
    if registry is None or registry.tracking_uri is None:
        return CheckItem(name, SKIP, ["no MLflow registry configured (--tracking-uri or MLFLOW_TRACKING_URI)"])
    problems, details = [], []
    for entry in entries:
        if entry.kind != "cnn":
            details.append(f"{entry.name}: external teacher, not in the registry")
            continue
        record = registry.entry(entry.source_run_id)
        if not record.found:
            problems.append(f"{entry.name}: run {entry.source_run_id} not found in {registry.tracking_uri}")
        elif record.export_sha256 is None:
            problems.append(f"{entry.name}: run {entry.source_run_id} records no export sha256 (tag pantanal.export_sha256)")
        elif record.export_sha256 != entry.export_sha256:
            source = "its float32 source's sha256" if entry.quantization else "sha256"
            problems.append(f"{entry.name}: {source} {entry.export_sha256[:12]} differs from the export recorded on run "
                            f"{entry.source_run_id} ({record.export_sha256[:12]})")
        elif record.decision == "reject":
            # A reviewer rejected this model, so shipping it would silently undo that decision.
            problems.append(f"{entry.name}: run {entry.source_run_id} was rejected in the registry; "
                            "remove the member or record another decision")
        else:
            details.append(f"{entry.name}: matches run {entry.source_run_id[:12]} "
                           f"(decision {record.decision or 'unreviewed'})")
    return CheckItem(name, FAIL if problems else PASS, problems or details)


def _read_sample_header(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return handle.readline().rstrip("\r\n").split(",")


def run_checklist(
    bundle: Path, inputs: list[Path], out_dir: Path, sample_submission: Path | None = None,
    budget_minutes: float = 90.0, expected_files: int | None = None, max_files: int | None = None,
    registry: MemberRegistry | None = None, threads: int | None = None,
) -> ChecklistResult:
    """Run every check; see the module docstring. The submission CSV is written to `out_dir`."""
    paths = collect_audio(inputs)
    started = time.perf_counter()
    try:
        loaded = open_bundle(bundle, threads=threads)
    except BundleError as exc:
        items = [CheckItem("bundle loads and every file matches its hash", FAIL, exc.problems)]
        return ChecklistResult(str(bundle), [str(p) for p in paths], items, None)
    scorer = Scorer(loaded.members, loaded.taxonomy, loaded.config, loaded.teacher)
    startup_s = time.perf_counter() - started
    items = [CheckItem("bundle loads and every file matches its hash", PASS,
                       [f"manifest {loaded.manifest_sha256[:12]}, {len(loaded.entries)} members, "
                        f"licences: {' | '.join(loaded.licences)}"]),
             check_blend(scorer)]

    # Score every file (or the first max_files) through the field scorer and write the CSV.
    scored_paths = paths if max_files is None else paths[:max_files]
    failures: list[AudioDecodeError] = []
    started = time.perf_counter()
    results = list(scorer.score_files(scored_paths, on_error=failures.append))
    elapsed_s = time.perf_counter() - started
    submission = Path(out_dir) / "submission.csv"
    write_submission(submission, scorer.taxonomy.labels, results)
    header, row_ids, values = read_submission(submission)

    items.append(check_coverage(paths, scored_paths, results, failures, row_ids, scorer.window_seconds))
    items.append(check_values(row_ids, values))
    items.append(check_columns(header, scorer.taxonomy.labels, _read_sample_header(sample_submission)))
    budget_item, throughput = check_budget(len(results), elapsed_s, startup_s, expected_files or len(paths), budget_minutes)
    if throughput is not None:
        throughput["compute_seconds"] = {k: round(v, 3) for k, v in scorer.compute_seconds.items()}
    items.append(budget_item)
    items.append(check_registry(loaded.entries, registry))
    return ChecklistResult(str(bundle), [str(p) for p in paths], items, throughput)


def format_result(result: ChecklistResult) -> str:
    lines = [f"checklist of {result.bundle} on {len(result.inputs)} file(s)"]
    for item in result.items:
        lines.append(f"  {item.status.upper():4}  {item.name}")
        lines.extend(f"        {detail}" for detail in item.details)
    failed = sum(item.status == FAIL for item in result.items)
    lines.append("result: PASSED" if result.passed else f"result: FAILED ({failed} of {len(result.items)} checks failed)")
    return "\n".join(lines)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "checklist",
        help="pre-submit checks of a bundle on a folder of recordings",
        description="Score every input file with the bundle, write the submission CSV and check it.",
    )
    parser.add_argument("bundle", type=Path, help="bundle folder")
    parser.add_argument("--input", type=Path, nargs="+", required=True, help="audio files or folders (searched recursively)")
    parser.add_argument("--sample-submission", type=Path, help="sample_submission.csv whose header the output must equal")
    parser.add_argument("--out", type=Path, help="folder for the checked submission.csv (default: a temporary folder)")
    parser.add_argument("--budget-minutes", type=float, default=90.0, help="time budget for the whole run in minutes (default: 90)")
    parser.add_argument("--expected-files", type=int, help="files the real run will score (default: the input's count)")
    parser.add_argument("--max-files", type=int, help="score only the first N files (fails the coverage check)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI of the registry; none skips the check (default: MLFLOW_TRACKING_URI, else mlruns/mlflow.db if present)")
    parser.add_argument("--ledger", type=Path, help="folder of <run id>.yaml decisions (default: registry/decisions if present)")
    parser.add_argument("--report", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--no-write", action="store_true", help="leave the bundle manifest unchanged")
    parser.add_argument("--threads", type=int, help="CPU threads for the members (default: all cores)")
    parser.set_defaults(func=run_checklist_command)


def run_checklist_command(args: argparse.Namespace) -> int:
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    try:
        registry = MemberRegistry(tracking_uri, args.ledger or default_ledger_dir())
    except FileNotFoundError as exc:
        log.error("%s; pass an existing --tracking-uri", exc)
        return 2
    with tempfile.TemporaryDirectory(prefix="pantanal-checklist-") as scratch:
        result = run_checklist(
            args.bundle, args.input, args.out or Path(scratch), args.sample_submission, args.budget_minutes,
            args.expected_files, args.max_files, registry, args.threads,
        )
    print(format_result(result))
    record = result.to_dict()
    if args.report is not None:
        atomic_write_text(args.report, json.dumps({**record, "throughput": result.throughput}, indent=2) + "\n")
    loaded = result.items[0].status == PASS
    if loaded and not args.no_write:
        sha256 = update_manifest(args.bundle, checklist=record, throughput=result.throughput)
        print(f"results stored in {args.bundle / 'manifest.json'} (manifest sha256 now {sha256[:12]})")
    return 0 if result.passed else 1
