"""The offline HTML report of a run: one self-contained file, in the active language.

Everything is inline (CSS, and spectrograms as `data:` PNG URIs) and a Content-Security-Policy
forbids any other source, so the report opens on a laptop with no network and requests nothing.
Per file it shows the spectrogram with the top species of each window, the file's species, and
what the species list hid. For the run it shows a species summary, the failures and the
provenance of the model or bundle.

File sections are streamed to a temporary file while the run's totals accumulate, so memory
stays bounded however many files there are; `ReportWriter.finish` then writes the report
atomically with the totals first.
"""

from __future__ import annotations

import base64
import html
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from infer.atomic import atomic_open
from infer.audio import format_duration
from infer.i18n import _, current_language, decimal
from infer.loading import Provenance
from infer.outputs.detections import Detection
from infer.outputs.spectrogram import Spectrogram
from infer.pipeline import FileScores

# Files with more windows than this get a table of windows instead of labels under the image.
MAX_STRIP_WINDOWS = 120
# Rows of the per-window table of a long file; every window is in detections.csv.
MAX_WINDOW_ROWS = 300
MAX_FILE_SPECIES = 10

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem auto;max-width:75rem;
padding:0 1rem;color:#1d2327;line-height:1.4}
h1{font-size:1.6rem}h2{border-bottom:2px solid #c9d6c3;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.2rem .5rem;text-align:left;vertical-align:top}
th{background:#eef3ec}td.n{text-align:right;font-variant-numeric:tabular-nums}
.file{border:1px solid #d0d7de;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
.file h3{margin:.3rem 0;word-break:break-all}.meta{color:#57606a;font-size:.9rem}
img.spectrogram{display:block;width:100%;min-width:20rem;height:8rem;image-rendering:pixelated;background:#000}
.strip{display:flex;width:100%;min-width:20rem;font-size:.7rem}
.strip div{border-left:1px solid #8c959f;overflow:hidden;white-space:nowrap;text-overflow:ellipsis;padding:0 2px}
.axis{display:flex;justify-content:space-between;font-size:.75rem;color:#57606a;min-width:20rem}
.note{background:#fff8c5;border-left:4px solid #d4a72c;padding:.3rem .6rem;margin:.3rem 0}
.error{background:#ffebe9;border-left:4px solid #cf222e;padding:.3rem .6rem}
code{word-break:break-all}
"""


@dataclass
class ReportFile:
    """One scored file's entry in the report.

    Attributes:
        scores: The file's scores and decode facts.
        shown: Its detections after `--top-k`, `--min-score` and the species list.
        hidden: Detections the species list removed.
        spectrogram: Its rendered spectrogram.
        notes: Field-facing remarks on decoding (length difference, zeroed samples...).
        reused: True when a previous run produced it (`--resume`).
    """

    scores: FileScores
    shown: list[Detection]
    hidden: list[Detection]
    spectrogram: Spectrogram
    notes: list[str] = field(default_factory=list)
    reused: bool = False


@dataclass
class ReportRun:
    """Run-level facts for the report.

    Attributes:
        provenance: The model or bundle that scored the files.
        processed: Files scored in this run.
        skipped: Files reused from a previous run.
        failures: `(file, cause)` of every file that failed.
        top_k: Classes listed per window.
        min_score: Lowest score listed.
        species_list: The site species list file, if one was used.
        generated: Local date and time of the run, as text.
    """

    provenance: Provenance
    processed: int
    skipped: int
    failures: list[tuple[str, str]]
    top_k: int
    min_score: float
    species_list: Path | None
    generated: str


@dataclass
class _SpeciesTotals:
    windows: Counter = field(default_factory=Counter)
    files: Counter = field(default_factory=Counter)
    best: dict[str, float] = field(default_factory=dict)
    names: dict[str, Detection] = field(default_factory=dict)

    def add(self, detections: list[Detection]) -> None:
        for label in {d.label for d in detections}:
            self.files[label] += 1
        for d in detections:
            self.windows[d.label] += 1
            self.best[d.label] = max(self.best.get(d.label, 0.0), d.score)
            self.names.setdefault(d.label, d)

    def rows(self) -> list[tuple[Detection, int, int, float]]:
        order = sorted(self.windows, key=lambda label: (-self.windows[label], -self.best[label], label))
        return [(self.names[label], self.windows[label], self.files[label], self.best[label]) for label in order]


class ReportWriter:
    """Build `report.html` file by file.

    Args:
        path: Where the report goes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._sections: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8", dir=path.parent)
        self._shown = _SpeciesTotals()
        self._hidden = _SpeciesTotals()
        self.files = 0

    def add_file(self, entry: ReportFile) -> None:
        """Render one file's section and add its detections to the run totals."""
        self._shown.add(entry.shown)
        self._hidden.add(entry.hidden)
        self.files += 1
        self._sections.write(_file_section(entry))

    def finish(self, run: ReportRun) -> None:
        """Write the report atomically and drop the temporary sections."""
        with atomic_open(self.path) as handle:
            handle.write(_head())
            handle.write(_run_section(run, self.files))
            handle.write(_species_section(self._shown))
            handle.write(_hidden_section(self._hidden, run.species_list))
            handle.write("<section id='files'>" + _h(2, _("Files")) + "\n")
            self._sections.seek(0)
            shutil.copyfileobj(self._sections, handle)
            handle.write("</section>\n")
            handle.write(_provenance_section(run.provenance))
            handle.write("</body></html>\n")
        self._sections.close()


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _h(level: int, text: str) -> str:
    return f"<h{level}>{_e(text)}</h{level}>"


def _p(text: str, css: str = "") -> str:
    return f"<p class='{css}'>{_e(text)}</p>" if css else f"<p>{_e(text)}</p>"


def _head() -> str:
    title = _("pantanal: species identification report")
    return (
        f"<!DOCTYPE html>\n<html lang='{current_language()}'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>\n<h1>{_e(title)}</h1>\n"
    )


def _run_section(run: ReportRun, files_shown: int) -> str:
    counts = _("%d file(s) scored in this run, %d reused from a previous run, %d failed") % (
        run.processed, run.skipped, len(run.failures))
    shown = _("Each window lists up to %d species scoring at least %s.") % (run.top_k, decimal(run.min_score, 2))
    parts = [
        "<section id='summary'>" + _h(2, _("Run summary")),
        _p("%s: %s. %s. %s" % (_("Generated"), run.generated, counts, shown), "meta"),
    ]
    if run.failures:
        parts.append(_h(3, _("Files that failed")))
        parts.append(_table([_("File"), _("Cause")], [[f"<code>{_e(f)}</code>", _e(c)] for f, c in run.failures]))
    parts.append("</section>\n")
    return "".join(parts)


def _species_section(totals: _SpeciesTotals) -> str:
    rows = [
        [_e(d.common_name), f"<i>{_e(d.scientific_name)}</i>", _e(d.class_name), _num(windows), _num(files), _num(decimal(best, 3))]
        for d, windows, files, best in totals.rows()
    ]
    body = _table([_("Species"), _("Scientific name"), _("Class"), _("Windows"), _("Files"), _("Highest score")], rows) \
        if rows else _p(_("No detection passed the filters."))
    return "<section id='species'>" + _h(2, _("Species summary")) + body + "</section>\n"


def _hidden_section(hidden: _SpeciesTotals, species_list: Path | None) -> str:
    heading = "<section id='hidden'>" + _h(2, _("Hidden by the species list"))
    if species_list is None:
        return heading + _p(_("No species list was used; nothing was hidden.")) + "</section>\n"
    total = sum(hidden.windows.values())
    text = _("The species list %s hid %d detection(s).") % (species_list, total)
    rows = [[_e(d.common_name), f"<i>{_e(d.scientific_name)}</i>", _num(windows), _num(decimal(best, 3))]
            for d, windows, _files, best in hidden.rows()]
    table = _table([_("Species"), _("Scientific name"), _("Detections"), _("Highest score")], rows) if rows else ""
    return heading + _p(text) + table + "</section>\n"


def _file_section(entry: ReportFile) -> str:
    scores = entry.scores
    parts = ["<article class='file'>" + _h(3, str(scores.path)), _p(_file_facts(entry), "meta")]
    parts.extend(_p(note, "note") for note in entry.notes)
    parts.append(_spectrogram_block(entry))
    parts.append(_file_species(entry.shown))
    if entry.hidden:
        names = Counter(d.common_name for d in entry.hidden)
        listed = ", ".join(f"{name} ({count})" for name, count in names.most_common())
        parts.append(_p(_("The species list hid %d detection(s) here: %s") % (len(entry.hidden), listed), "note"))
    parts.append("</article>\n")
    return "".join(parts)


def _file_facts(entry: ReportFile) -> str:
    info = entry.scores.info
    facts = _("%s, %d Hz, %d channel(s), %s; %d window(s)") % (
        format_duration(entry.scores.decoded_seconds), info.sample_rate, info.channels, info.subtype, entry.scores.n_windows)
    if entry.reused:
        facts += "; " + _("reused from a previous run")
    return facts


def _spectrogram_block(entry: ReportFile) -> str:
    scores = entry.scores
    encoded = base64.b64encode(entry.spectrogram.png).decode("ascii")
    alt = _("Spectrogram of %s, 0 to %.0f Hz") % (scores.path.name, entry.spectrogram.fmax)
    image = f"<img class='spectrogram' alt='{_e(alt)}' src='data:image/png;base64,{encoded}'>"
    end = max(scores.decoded_seconds, float(scores.ends[-1]) if len(scores.ends) else 0.0)
    axis = f"<div class='axis'><span>0 s</span><span>{_e(format_duration(end))}</span></div>"
    top = _top_per_window(entry.shown, scores.n_windows)
    if scores.n_windows <= MAX_STRIP_WINDOWS:
        return image + _strip(scores, top, end) + axis
    return image + axis + _window_table(scores, top)


def _top_per_window(shown: list[Detection], n_windows: int) -> list[Detection | None]:
    top: list[Detection | None] = [None] * n_windows
    for d in shown:
        if d.rank == 1:
            top[d.window] = d
    return top


def _strip(scores: FileScores, top: list[Detection | None], end: float) -> str:
    cells = []
    for window, d in enumerate(top):
        width = 100.0 * (scores.ends[window] - scores.starts[window]) / max(end, 1e-9)
        label = f"{decimal(d.score, 2)} {d.common_name}" if d else "–"
        nothing = _("nothing above the minimum score")
        description = f"{d.common_name} ({d.scientific_name}) {decimal(d.score, 3)}" if d else nothing
        title = f"{scores.starts[window]:.0f}-{scores.ends[window]:.0f} s: {description}"
        cells.append(f"<div style='width:{width:.4f}%' title='{_e(title)}'>{_e(label)}</div>")
    return f"<div class='strip'>{''.join(cells)}</div>"


def _window_table(scores: FileScores, top: list[Detection | None]) -> str:
    rows = []
    for window, d in enumerate(top):
        if d is None:
            continue
        if len(rows) == MAX_WINDOW_ROWS:
            break
        rows.append([_num(f"{scores.starts[window]:.0f}-{scores.ends[window]:.0f} s"), _e(d.common_name),
                     f"<i>{_e(d.scientific_name)}</i>", _num(decimal(d.score, 3))])
    shown = sum(d is not None for d in top)
    note = ""
    if shown > len(rows):
        note = _p(_("First %d of %d windows with a detection; detections.csv lists them all.") % (len(rows), shown), "meta")
    return _table([_("Window"), _("Top species"), _("Scientific name"), _("Score")], rows) + note


def _file_species(shown: list[Detection]) -> str:
    totals = _SpeciesTotals()
    totals.add(shown)
    rows = [[_e(d.common_name), f"<i>{_e(d.scientific_name)}</i>", _num(windows), _num(decimal(best, 3))]
            for d, windows, _files, best in totals.rows()[:MAX_FILE_SPECIES]]
    if not rows:
        return _p(_("No detection passed the filters."))
    return _table([_("Species"), _("Scientific name"), _("Windows"), _("Highest score")], rows)


def _provenance_section(provenance: Provenance) -> str:
    kind = _("bundle") if provenance.kind == "bundle" else _("model")
    lines = [
        "<section id='provenance'>" + _h(2, _("Provenance")),
        "<p>" + _e(_("Scored with the %s") % kind) + f" <code>{_e(provenance.identifier)}</code>, "
        f"sha256 <code>{_e(provenance.sha256)}</code>.</p>",
    ]
    rows = [
        [_e(m.get("name", "")), _e(m.get("kind", "")), f"<code>{_e(m.get('file', ''))}</code>",
         f"<code>{_e(str(m.get('sha256', ''))[:16])}</code>", _e(m.get("source_run_id", "")), _e(m.get("stage", "")),
         _e(m.get("licence", "")), _e(m.get("decision") or _("unknown"))]
        for m in provenance.members
    ]
    lines.append(_table([_("Member"), _("Kind"), _("File"), "sha256", _("Source run"), _("Stage"), _("Licence"),
                         _("Registry decision")], rows))
    lines.append("</section>\n")
    return "".join(lines)


def _table(header: Iterable[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num(value: object) -> str:
    return f"<td class='n'>{_e(value)}</td>"

