"""The end-of-run summary: what was processed, skipped and failed, and why.

`errors.csv` lists every failed file with a stable error code and the cause in the active
language. `summary.json` contains the same facts for scripts, and `summary.txt` is the text the
command prints.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from infer.atomic import atomic_open, atomic_write_text
from infer.i18n import _, decimal, ngettext

ERROR_COLUMNS = ("file", "error", "cause")
PROCESSED, SKIPPED, FAILED = "processed", "skipped", "failed"


@dataclass
class FileOutcome:
    """The outcome of one input file.

    Attributes:
        file: The path as found in the inputs.
        status: "processed", "skipped" (valid outputs from a previous run) or "failed".
        key: Its part folder under `files/`.
        rows: Submission rows it produced.
        error: Stable error code when it failed (see `infer.audio.AudioDecodeError`).
        cause: Field-facing cause when it failed.
        notes: Field-facing remarks when it succeeded (length difference, zeroed samples...).
        seconds: Processing time.
        reused: The outcome comes from a previous run's records (`--resume`); the file was not
            decoded again.
    """

    file: str
    status: str
    key: str = ""
    rows: int = 0
    error: str = ""
    cause: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    reused: bool = False


@dataclass
class RunSummary:
    """The whole run.

    Attributes:
        outcomes: One per input file, in input order.
        out: Output folder.
        outputs: Run-level files written, relative to `out`.
        elapsed_s: Wall-clock seconds.
        stopped: Why the run stopped before the last file (time budget), else None.
        repeated_row_ids: Submission row ids that appear more than once (files sharing a stem,
            such as `site_a/rec.wav` and `site_b/rec.wav`, or `rec.wav` and `rec.flac`).
    """

    outcomes: list[FileOutcome]
    out: Path
    outputs: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    stopped: str | None = None
    repeated_row_ids: int = 0

    def with_status(self, status: str) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == status]


def write_errors_csv(path: Path, outcomes: list[FileOutcome]) -> int:
    """Write `errors.csv` atomically (a header only when nothing failed); return the rows."""
    failed = [o for o in outcomes if o.status == FAILED]
    with atomic_open(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(ERROR_COLUMNS)
        writer.writerows([o.file, o.error, o.cause] for o in failed)
    return len(failed)


def write_summary_json(path: Path, summary: RunSummary) -> None:
    counts = {status: len(summary.with_status(status)) for status in (PROCESSED, SKIPPED, FAILED)}
    document = {
        "counts": counts,
        "elapsed_s": round(summary.elapsed_s, 3),
        "stopped": summary.stopped,
        "repeated_row_ids": summary.repeated_row_ids,
        "outputs": summary.outputs,
        "files": [asdict(o) for o in summary.outcomes],
    }
    atomic_write_text(path, json.dumps(document, indent=1, ensure_ascii=False) + "\n")


def format_summary(summary: RunSummary) -> str:
    """Format the field-facing end-of-run summary in the active language."""
    processed, skipped, failed = (summary.with_status(s) for s in (PROCESSED, SKIPPED, FAILED))
    total = len(summary.outcomes)
    lines = [
        ngettext("%d file: %d processed, %d skipped (outputs already complete), %d failed, in %s s",
                 "%d files: %d processed, %d skipped (outputs already complete), %d failed, in %s s", total)
        % (total, len(processed), len(skipped), len(failed), decimal(summary.elapsed_s, 1)),
    ]
    if summary.stopped:
        lines.append(_("Stopped early: %s") % summary.stopped)
    if failed:
        lines.append(_("Failed files (also in errors.csv):"))
        lines.extend(f"  {o.file}: {o.cause}" for o in failed)
        known = sum(o.reused for o in failed)
        if known:
            lines.append(_("%d of them failed the same way in a previous run and were not read again; "
                           "replace or repair them and rerun.") % known)
    noted = [o for o in processed + skipped if o.notes]
    if noted:
        lines.append(_("Notes:"))
        lines.extend(f"  {o.file}: {note}" for o in noted for note in o.notes)
    if summary.repeated_row_ids:
        lines.append(_("%d submission row id(s) repeat because several files share a name without its "
                       "extension; detections.csv names each file in full.") % summary.repeated_row_ids)
    if summary.outputs:
        lines.append(_("Outputs in %s: %s") % (summary.out, ", ".join(summary.outputs)))
    return "\n".join(lines) + "\n"
