"""Writers of the human-facing outputs: detections, Raven, Audacity, PNG spectrograms, the report."""

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest

from infer.audio import AudioInfo, DecodeReport
from infer.i18n import set_language
from infer.loading import Provenance
from infer.outputs.audacity import write_audacity_labels
from infer.outputs.detections import DisplayFilter, hidden_detections, shown_detections
from infer.outputs.png import encode_indexed_png
from infer.outputs.raven import RAVEN_COLUMNS, write_raven_table
from infer.outputs.report import ReportFile, ReportRun, ReportWriter
from infer.outputs.spectrogram import PALETTE, SpectrogramBuilder
from infer.pipeline import FileScores
from infer.taxonomy import Taxonomy
from tests.conftest import MINI

TAXONOMY = Taxonomy.from_csv(MINI / "taxonomy.csv")
RATE = 32000


def file_scores(n_windows: int = 3, seconds: float = 12.5) -> FileScores:
    """Scores where class k peaks in window k, so the expected detections are known."""
    scores = np.full((n_windows, len(TAXONOMY)), 0.01, dtype=np.float32)
    for window in range(n_windows):
        scores[window, window] = 0.9
        scores[window, 100] = 0.5
    starts = np.arange(n_windows) * 5.0
    info = AudioInfo(Path("rec.wav"), RATE, 1, int(seconds * RATE), "WAV", "PCM_16", "soundfile", int(seconds * RATE))
    return FileScores(
        path=Path("site/rec.wav"), row_ids=[f"rec_{5 * (w + 1)}" for w in range(n_windows)], starts=starts,
        ends=np.minimum(starts + 5.0, seconds), scores=scores, member_scores={}, teacher_scores=None,
        info=info, report=DecodeReport(decoded_frames=int(seconds * RATE)),
    )


def test_detections_follow_top_k_and_min_score():
    shown = shown_detections(file_scores(), TAXONOMY, DisplayFilter(top_k=3, min_score=0.4))
    assert [(d.window, d.rank, d.label) for d in shown] == [
        (0, 1, TAXONOMY.labels[0]), (0, 2, TAXONOMY.labels[100]),
        (1, 1, TAXONOMY.labels[1]), (1, 2, TAXONOMY.labels[100]),
        (2, 1, TAXONOMY.labels[2]), (2, 2, TAXONOMY.labels[100]),
    ]
    assert shown[-1].end == 12.5


def test_species_list_hides_and_counts_what_it_hid():
    allowed = np.zeros(len(TAXONOMY), dtype=bool)
    allowed[[0, 100]] = True
    display = DisplayFilter(top_k=1, min_score=0.4, allowed=allowed)
    shown = shown_detections(file_scores(), TAXONOMY, display)
    hidden = hidden_detections(file_scores(), TAXONOMY, display)
    assert [d.label for d in shown] == [TAXONOMY.labels[0], TAXONOMY.labels[100], TAXONOMY.labels[100]]
    assert [d.label for d in hidden] == [TAXONOMY.labels[1], TAXONOMY.labels[2]]


def test_portuguese_common_names():
    scores = file_scores(1)
    kiskadee = [t.scientific_name for t in TAXONOMY.taxa].index("Pitangus sulphuratus")
    scores.scores[0, kiskadee] = 0.99
    try:
        set_language("pt-BR")
        top = shown_detections(scores, TAXONOMY, DisplayFilter(top_k=1))[0]
        assert top.common_name == "bem-te-vi"
    finally:
        set_language("en")
    assert shown_detections(scores, TAXONOMY, DisplayFilter(top_k=1))[0].common_name == "Great Kiskadee"


def test_raven_table_has_the_standard_columns(tmp_path):
    shown = shown_detections(file_scores(), TAXONOMY, DisplayFilter(top_k=2))
    path = tmp_path / "rec.selections.txt"
    assert write_raven_table(path, shown, channel=2, low_hz=40.0, high_hz=16000.0) == 6
    rows = list(csv.reader(path.open(newline=""), delimiter="\t"))
    assert tuple(rows[0]) == RAVEN_COLUMNS
    assert rows[1][:7] == ["1", "Spectrogram 1", "2", "0.000", "5.000", "40.0", "16000.0"]
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(1, 7)]
    assert rows[-1][4] == "12.500"


def test_audacity_labels_are_start_end_label(tmp_path):
    shown = shown_detections(file_scores(), TAXONOMY, DisplayFilter(top_k=1))
    path = tmp_path / "rec.txt"
    write_audacity_labels(path, shown)
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    start, end, label = lines[2].split("\t")
    assert (float(start), float(end)) == (10.0, 12.5)
    assert label.endswith("(0.90)")


def test_png_decodes_to_the_same_pixels():
    image_module = pytest.importorskip("PIL.Image")
    pixels = np.arange(12 * 7, dtype=np.uint8).reshape(7, 12)
    image = image_module.open(io.BytesIO(encode_indexed_png(pixels, PALETTE)))
    assert image.mode == "P"
    assert image.size == (12, 7)
    np.testing.assert_array_equal(np.asarray(image), pixels)


@pytest.mark.parametrize("signal", ["silence", "dc"])
def test_spectrogram_of_silence_and_dc_is_finite(signal):
    block = np.zeros(RATE * 6, np.float32) if signal == "silence" else np.full(RATE * 6, 0.95, np.float32)
    builder = SpectrogramBuilder(RATE, 6.0)
    builder.add(block)
    assert np.isfinite(builder._sums).all()
    assert builder.finish().columns == 120


def test_spectrogram_width_stays_bounded_for_unknown_length():
    builder = SpectrogramBuilder(RATE, expected_seconds=None, max_columns=300)
    block = np.random.default_rng(0).standard_normal(RATE * 60).astype(np.float32)
    for _ in range(20):  # 20 minutes the header did not announce
        builder.add(block)
    spectrogram = builder.finish()
    assert spectrogram.columns <= 300
    assert spectrogram.seconds_per_column * spectrogram.columns >= 1200


def test_report_is_self_contained(tmp_path):
    scores = file_scores()
    builder = SpectrogramBuilder(RATE, 12.5)
    builder.add(np.random.default_rng(1).standard_normal(int(12.5 * RATE)).astype(np.float32))
    display = DisplayFilter(top_k=2)
    writer = ReportWriter(tmp_path / "report.html")
    writer.add_file(ReportFile(scores, shown_detections(scores, TAXONOMY, display), [], builder.finish(),
                               notes=["a <note> to escape"]))
    provenance = Provenance("model", "abc123def456", "ab" * 32, members=[{"name": "m", "kind": "cnn"}])
    writer.finish(ReportRun(provenance, 1, 0, [("bad.wav", "truncated")], 2, 0.0, None, "2026-01-01 00:00"))
    html = (tmp_path / "report.html").read_text()
    assert html.count("<img class='spectrogram'") == 1
    assert "a &lt;note&gt; to escape" in html
    assert not re.search(r"(src|href)=['\"](?!data:)", html)
    assert "default-src 'none'" in html
    assert list(tmp_path.iterdir()) == [tmp_path / "report.html"]
