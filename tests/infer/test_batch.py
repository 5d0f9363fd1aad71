"""`pantanal infer` over a whole field card: every format and breakage, resume, options, the report."""

import collections
import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from infer import i18n
from infer.audio import decode_mono
from infer.cli import main
from infer.loading import load_scorer
from tests.conftest import EXTRA, MINI, PROJECT_ROOT, S22_SOUNDSCAPE
from tests.infer.field_files import make_field_folder, tone, write

pytestmark = pytest.mark.slow

WINDOW = 160000  # samples per 5 s window at 32 kHz


def infer(*args: object) -> int:
    """Run `pantanal infer` in this process; English unless the arguments name a language."""
    argv = ["infer", *map(str, args), "--no-progress"]
    if "--lang" not in argv:
        argv += ["--lang", "en"]
    return main(argv)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    i18n.set_language("en")


@pytest.fixture(scope="module")
def field_run(tiny_pipeline, tmp_path_factory):
    """One run over the generated card plus the real recordings, then a `--resume` rerun."""
    root = tmp_path_factory.mktemp("field")
    expected = make_field_folder(root / "card")
    inputs = [root / "card", MINI / "train_audio", MINI / "train_soundscapes", EXTRA]
    out = root / "out"
    first_rc = infer(*inputs, "--model", tiny_pipeline["model"], "--out", out)
    first = {name: (out / name).read_bytes() for name in ("submission.csv", "detections.csv", "errors.csv", "summary.json")}
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("files/*/*")}
    second_rc = infer(*inputs, "--model", tiny_pipeline["model"], "--out", out, "--resume")
    return {"expected": expected, "inputs": inputs, "out": out, "first_rc": first_rc, "second_rc": second_rc,
            "first": first, "stamps": stamps, "model": tiny_pipeline["model"]}


def healthy_files(run: dict) -> list[Path]:
    generated = [path for path, e in run["expected"].items() if e.error is None]
    real = [p for folder in run["inputs"][1:] for p in folder.rglob("*") if p.suffix in (".ogg", ".wav")]
    return generated + real


def test_broken_files_listed_with_cause(field_run):
    errors = {Path(row["file"]): row for row in read_csv(field_run["out"] / "errors.csv")}
    broken = {path: e for path, e in field_run["expected"].items() if e.error is not None}
    assert set(errors) == set(broken)
    for path, expected in broken.items():
        assert errors[path]["error"] == expected.error, path
        assert expected.cause in errors[path]["cause"], (path, errors[path]["cause"])
    assert field_run["first_rc"] == 3


def first_summary(run: dict) -> dict:
    return json.loads(run["first"]["summary.json"])


def test_every_input_is_accounted_for(field_run):
    summary = first_summary(field_run)
    statuses = {Path(f["file"]): f["status"] for f in summary["files"]}
    assert set(statuses) == set(healthy_files(field_run)) | {p for p, e in field_run["expected"].items() if e.error}
    assert summary["counts"]["processed"] + summary["counts"]["failed"] == len(statuses)


def test_healthy_files_get_one_row_per_window(field_run):
    rows = read_csv(field_run["out"] / "submission.csv")
    expected = collections.Counter()
    for path in healthy_files(field_run):
        windows = max(1, math.ceil(len(decode_mono(path, 32000)) / WINDOW))
        expected.update(f"{path.stem}_{5 * (w + 1)}" for w in range(windows))
    assert collections.Counter(r["row_id"] for r in rows) == expected
    with open(MINI / "sample_submission.csv", newline="") as handle:
        assert list(rows[0].keys()) == next(csv.reader(handle))
    values = np.array([[float(v) for k, v in r.items() if k != "row_id"] for r in rows])
    assert np.isfinite(values).all()
    assert values.min() >= 0
    assert values.max() <= 1
    # site_a/rec.wav and site_b/rec.wav, and the tone.* files, share their stems
    assert first_summary(field_run)["repeated_row_ids"] == sum(n - 1 for n in expected.values())


def test_submission_rows_equal_direct_scoring(field_run):
    scorer, _ = load_scorer(model=field_run["model"])
    direct = scorer.score_file(S22_SOUNDSCAPE)
    rows = {r["row_id"]: r for r in read_csv(field_run["out"] / "submission.csv")}
    written = np.array([[float(rows[rid][label]) for label in scorer.taxonomy.labels] for rid in direct.row_ids])
    np.testing.assert_allclose(written, direct.scores, rtol=1e-5, atol=1e-7)


def test_notes_report_nan_and_length_differences(field_run):
    notes = {Path(f["file"]).name: f["notes"] for f in first_summary(field_run)["files"]}
    assert any("NaN" in note for note in notes["nan_inf.wav"])
    assert notes["pcm16.wav"] == []


def test_tables_and_report_per_file(field_run):
    out = field_run["out"]
    scored = len(healthy_files(field_run))
    assert len(list((out / "raven").glob("*.selections.txt"))) == scored
    assert len(list((out / "audacity").glob("*.txt"))) == scored
    assert (out / "report.html").read_text(encoding="utf-8").count("<img class='spectrogram'") == scored


def test_resume_processes_nothing(field_run):
    out = field_run["out"]
    counts = read_json(out / "summary.json")["counts"]
    assert counts["processed"] == 0
    assert counts["skipped"] == len(healthy_files(field_run))
    assert all(f["reused"] for f in read_json(out / "summary.json")["files"])
    assert {p: p.stat().st_mtime_ns for p in out.glob("files/*/*")} == field_run["stamps"]
    for name in ("submission.csv", "detections.csv", "errors.csv"):
        assert (out / name).read_bytes() == field_run["first"][name], name
    assert field_run["second_rc"] == 3


@pytest.mark.browser
def test_report_opens_in_chromium_without_errors(field_run):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian's chromium is not installed (make browser installs it)")
    artifacts = PROJECT_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    messages, requests = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda message: messages.append(message) if message.type == "error" else None)
        page.on("pageerror", lambda error: messages.append(error))
        page.on("request", lambda request: requests.append(request.url))
        page.goto((field_run["out"] / "report.html").as_uri())
        images = page.locator("img.spectrogram")
        count = images.count()
        loaded = page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        page.screenshot(path=str(artifacts / "infer-report.png"), full_page=False)
        browser.close()
    assert messages == []
    assert count == len(healthy_files(field_run))
    assert loaded
    assert [url for url in requests if not url.startswith(("file:", "data:"))] == []


# ---- options, on a handful of small files


@pytest.fixture
def small_card(tmp_path) -> Path:
    card = tmp_path / "card"
    write(card / "a.wav", tone(7.0, 32000), 32000)
    write(card / "stereo.wav", np.stack([tone(6.0, 32000), np.zeros(6 * 32000, np.float32)], axis=1), 32000)
    return card


def test_display_options_change_without_rescoring(tiny_pipeline, small_card, tmp_path):
    out = tmp_path / "out"
    assert infer(small_card, "--model", tiny_pipeline["model"], "--out", out) == 0
    species = tmp_path / "site.txt"
    species.write_text("22961\nLysapsus limellum\n", encoding="utf-8")
    rc = infer(small_card, "--model", tiny_pipeline["model"], "--out", out, "--resume", "--top-k", "1",
               "--species-list", species, "--lang", "pt-BR")
    summary = read_json(out / "summary.json")
    detections = read_csv(out / "detections.csv")
    report = (out / "report.html").read_text(encoding="utf-8")
    assert rc == 0
    assert summary["counts"] == {"processed": 0, "skipped": 2, "failed": 0}
    assert len(detections) == 2 + 2  # top-1 of each window of a 7 s and a 6 s file
    assert {d["label"] for d in detections} <= {"22961", "1595929"}
    assert "<html lang='pt-BR'>" in report
    assert "Ocultadas pela lista de espécies" in report
    assert "arquivos" in (out / "summary.txt").read_text(encoding="utf-8")


def test_earlier_run_tables_kept_with_warning(tiny_pipeline, small_card, tmp_path, caplog):
    out = tmp_path / "out"
    assert infer(small_card, "--model", tiny_pipeline["model"], "--out", out) == 0
    caplog.clear()
    assert infer(small_card / "a.wav", "--model", tiny_pipeline["model"], "--out", out) == 0
    assert len(read_csv(out / "submission.csv")) == 2  # a.wav alone: 7 s, two windows
    assert len(list((out / "raven").glob("*.selections.txt"))) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(w.startswith("raven/ also contains 1 table(s) of recordings outside this run") for w in warnings), warnings
    assert any(w.startswith("audacity/ also contains 1 table(s)") for w in warnings), warnings


def test_modified_input_is_scored_again(tiny_pipeline, small_card, tmp_path):
    out = tmp_path / "out"
    infer(small_card, "--model", tiny_pipeline["model"], "--out", out)
    write(small_card / "a.wav", tone(3.0, 32000), 32000)
    infer(small_card, "--model", tiny_pipeline["model"], "--out", out, "--resume")
    files = {Path(f["file"]).name: f for f in read_json(out / "summary.json")["files"]}
    assert files["a.wav"]["status"] == "processed"
    assert files["a.wav"]["rows"] == 1
    assert files["stereo.wav"]["status"] == "skipped"


def test_channel_is_counted_from_one(tiny_pipeline, small_card, tmp_path):
    out = tmp_path / "out"
    assert infer(small_card / "stereo.wav", "--model", tiny_pipeline["model"], "--out", out, "--channel", "2",
                 "--format", "submission") == 0
    scorer, _ = load_scorer(model=tiny_pipeline["model"])
    scorer.config.channel = 1
    direct = scorer.score_file(small_card / "stereo.wav")
    rows = read_csv(out / "submission.csv")
    written = np.array([[float(r[label]) for label in scorer.taxonomy.labels] for r in rows])
    np.testing.assert_allclose(written, direct.scores, rtol=1e-5, atol=1e-7)
    assert sorted(p.name for p in out.iterdir()) == ["errors.csv", "files", "submission.csv", "summary.json", "summary.txt"]

    assert infer(small_card / "stereo.wav", "--model", tiny_pipeline["model"], "--out", out, "--channel", "3") == 3
    assert read_csv(out / "errors.csv")[0]["error"] == "channel"


def test_truncated_file_is_scored_when_allowed(tiny_pipeline, tmp_path):
    path = write(tmp_path / "card" / "cut.wav", tone(8.0, 32000), 32000)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    out = tmp_path / "out"
    assert infer(path, "--model", tiny_pipeline["model"], "--out", out) == 3
    assert infer(path, "--model", tiny_pipeline["model"], "--out", out, "--allow-truncated", "--resume") == 0
    outcome = read_json(out / "summary.json")["files"][0]
    assert outcome["status"] == "processed"
    assert outcome["rows"] == 1
    assert any("--allow-truncated" in note for note in outcome["notes"])


def test_budget_stop_leaves_the_rest_unprocessed(tiny_pipeline, tmp_path):
    card = tmp_path / "card"
    for index in range(7):
        write(card / f"r{index}.wav", tone(1.0, 32000), 32000)
    out = tmp_path / "out"
    rc = infer(card, "--model", tiny_pipeline["model"], "--out", out, "--budget-minutes", "0.00001",
               "--budget-action", "stop", "--format", "submission")
    errors = read_csv(out / "errors.csv")
    scored_rows = len(read_csv(out / "submission.csv"))
    assert rc == 4
    # The budget is spent by the first file, so the guard stops before the 5-file sample ends.
    assert 1 <= scored_rows < 7
    assert [e["error"] for e in errors] == ["not_processed"] * (7 - scored_rows)


@pytest.mark.parametrize("case", ["missing input", "channel zero", "out is a file", "out below a file", "bad format"])
def test_usage_and_output_errors_exit_clearly(tiny_pipeline, small_card, tmp_path, capsys, case):
    model = tiny_pipeline["model"]
    blocker = tmp_path / "blocker.txt"
    blocker.write_text("not a folder")
    args = {
        "missing input": [tmp_path / "absent", "--model", model, "--out", tmp_path / "o"],
        "channel zero": [small_card, "--model", model, "--out", tmp_path / "o", "--channel", "0"],
        "out is a file": [small_card, "--model", model, "--out", blocker],
        "out below a file": [small_card, "--model", model, "--out", blocker / "sub"],
        "bad format": [small_card, "--model", model, "--out", tmp_path / "o", "--format", "pdf"],
    }[case]
    with pytest.raises(SystemExit) if case == "bad format" else _no_exit() as raised:
        rc = infer(*args)
    if case == "bad format":
        rc = raised.value.code
    error = capsys.readouterr().err
    assert rc == (1 if case.startswith("out") else 2)
    assert {"missing input": "input not found", "channel zero": "--channel", "out is a file": "is a file",
            "out below a file": "cannot write to the output folder", "bad format": "unknown format"}[case] in error
    assert "Traceback" not in error


class _no_exit:
    def __enter__(self):
        return None

    def __exit__(self, *exc_info):
        return False


def test_missing_model_is_a_usage_error(small_card, tmp_path, capsys):
    assert infer(small_card, "--model", tmp_path / "absent.onnx", "--out", tmp_path / "o") == 2
    assert "model file not found" in capsys.readouterr().err


def test_same_stem_in_two_folders_keeps_both(tiny_pipeline, tmp_path):
    card = tmp_path / "card"
    write(card / "north" / "dawn.wav", tone(2.0, 32000), 32000)
    write(card / "south" / "dawn.wav", tone(2.0, 32000, frequency=5000), 32000)
    out = tmp_path / "out"
    assert infer(card, "--model", tiny_pipeline["model"], "--out", out, "--format", "detections,raven") == 0
    assert len(list((out / "files").iterdir())) == 2
    assert len(list((out / "raven").iterdir())) == 2
    assert {Path(d["file"]).parent.name for d in read_csv(out / "detections.csv")} == {"north", "south"}
    shutil.rmtree(out)


def test_unexpected_error_fails_one_file_only(tiny_pipeline, tmp_path, monkeypatch):
    from infer.pipeline import Scorer

    card = tmp_path / "card"
    for name in ("a", "b", "c"):
        write(card / f"{name}.wav", tone(6.0, 32000), 32000)
    original = Scorer._collect

    def broken_for_b(self, item, member_parts, teacher_parts):
        if item.path.name == "b.wav":
            raise RuntimeError("simulated bug")
        return original(self, item, member_parts, teacher_parts)

    monkeypatch.setattr(Scorer, "_collect", broken_for_b)
    out = tmp_path / "out"
    rc = infer(card, "--model", tiny_pipeline["model"], "--out", out, "--format", "submission")
    errors = read_csv(out / "errors.csv")
    rows = read_csv(out / "submission.csv")
    assert rc == 3
    assert [(Path(e["file"]).name, e["error"]) for e in errors] == [("b.wav", "internal")]
    assert "simulated bug" in errors[0]["cause"]
    assert sorted({r["row_id"].rsplit("_", 1)[0] for r in rows}) == ["a", "c"]
