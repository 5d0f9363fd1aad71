"""The held-out-site harness on the real S22 soundscape: parity with `pantanal infer`, coverage, errors."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from harness.config import load_harness_config
from harness.site_eval import SiteLabelsError, evaluate, labelled_site_windows
from infer.loading import load_scorer
from infer.pipeline import DEFAULT_TTA_SHIFTS, ScoringConfig
from infer.taxonomy import Taxonomy
from tests.conftest import MINI, S22_SOUNDSCAPE
from tests.harness.conftest import FAST, run_cli

LABEL_COLUMNS = "filename,start,end,primary_label\n"


@pytest.fixture
def dataset_copy(tmp_path):
    """The mini dataset's tables and S22 soundscape in a temporary folder (focal audio is not needed)."""
    root = tmp_path / "data"
    (root / "train_soundscapes").mkdir(parents=True)
    for name in ("taxonomy.csv", "train.csv", "train_soundscapes_labels.csv"):
        shutil.copy(MINI / name, root / name)
    shutil.copy(S22_SOUNDSCAPE, root / "train_soundscapes" / S22_SOUNDSCAPE.name)
    return root


def test_labelled_windows_of_s22():
    taxonomy = Taxonomy.from_csv(MINI / "taxonomy.csv")
    windows = labelled_site_windows(MINI, "22", r"_S(\d+)_", taxonomy, 5.0)
    stem = S22_SOUNDSCAPE.stem
    assert windows.row_ids == [f"{stem}_{end}" for end in range(5, 65, 5)]
    assert list(windows.paths) == [S22_SOUNDSCAPE.name]
    positives = {taxonomy.labels[c] for c in np.flatnonzero(windows.labels.any(axis=0))}
    assert positives == {"22961", "23158", "24321", "65380", "517063"}
    # 517063 is absent from the windows ending at 45 s and 55 s
    column = windows.labels[:, taxonomy.index()["517063"]]
    assert column.tolist() == [1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1]
    assert len(windows.without_audio) > 0


def test_harness_defaults_are_the_field_commands():
    # `pantanal infer` scores with ScoringConfig(tta_shifts=DEFAULT_TTA_SHIFTS) and default blend
    # and post-processing; the harness must score the same way.
    assert load_harness_config().scoring_config() == ScoringConfig(tta_shifts=DEFAULT_TTA_SHIFTS)


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="gates.bar"):
        load_harness_config(overrides=["gates.bar=0.5"])


def test_config_normalises_the_site():
    assert load_harness_config(overrides=["site=S22"]).site == "22"


@pytest.mark.slow
def test_harness_and_infer_give_identical_probabilities(tiny_pipeline, tmp_path):
    model = tiny_pipeline["model"]
    infer_run = run_cli("infer", S22_SOUNDSCAPE, "--model", model, "--out", tmp_path / "infer")
    assert infer_run.code == 0, infer_run.err
    harness_run = run_cli("harness", "--model", model, "--no-log", "--out", tmp_path / "report.json",
                          "--scores-out", tmp_path / "harness.csv", *FAST)
    assert harness_run.code == 0, harness_run.err

    # Same rows, same columns, same six-significant-digit values: byte for byte.
    assert (tmp_path / "harness.csv").read_bytes() == (tmp_path / "infer" / "submission.csv").read_bytes()

    # And the unrounded probabilities the metric used are the field pipeline's, exactly.
    config = load_harness_config(overrides=["bootstrap.resamples=10"])
    scorer, provenance = load_scorer(model=model, config=config.scoring_config())
    _, site_scores = evaluate(scorer, provenance, config)
    field = load_scorer(model=model, config=ScoringConfig(tta_shifts=DEFAULT_TTA_SHIFTS))[0].score_file(S22_SOUNDSCAPE)
    assert site_scores.windows.row_ids == field.row_ids
    np.testing.assert_array_equal(site_scores.scores, field.scores.astype(np.float64))


@pytest.mark.slow
def test_report_contents(tiny_pipeline, tmp_path):
    result = run_cli("harness", "--model", tiny_pipeline["model"], "--site", "S22", "--no-log",
                     "--out", tmp_path / "report.json", *FAST)
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["coverage"] == {
        "ok": True, "files_expected": 1, "files_scored": 1, "windows_expected": 12, "windows_scored": 12,
        "audio_windows_expected": 12, "audio_windows_scored": 12, "gaps": [],
    }
    metrics = report["metrics"]
    assert metrics["classes_with_positives"] == 5
    # only 517063 has negative windows; the four frogs heard in every window have no AUC
    assert metrics["classes_with_auc"] == 1
    assert metrics["macro_auc"] == next(c["auc"] for c in metrics["per_class"] if c["label"] == "517063")
    assert set(metrics["taxon_auc"]) == {"Aves", "Amphibia", "Insecta", "Mammalia", "Reptilia"}
    assert metrics["taxon_auc"]["Amphibia"] == metrics["macro_auc"]
    assert metrics["bootstrap"]["files"] == 1
    assert metrics["bootstrap"]["low"] == metrics["bootstrap"]["high"] == metrics["macro_auc"]
    assert 0 <= metrics["padded_cmap"] <= 1
    assert report["scoring"]["tta_shifts"] == [-0.5, 0.0, 0.5]
    assert report["model"]["source_run_ids"] == [tiny_pipeline["record"]["run_id"]]


@pytest.mark.slow
def test_truncated_audio_is_a_coverage_gap(tiny_pipeline, dataset_copy, tmp_path):
    path = dataset_copy / "train_soundscapes" / S22_SOUNDSCAPE.name
    audio, rate = sf.read(S22_SOUNDSCAPE)
    sf.write(path, audio[: 42 * rate], rate, format="OGG", subtype="VORBIS")
    result = run_cli("harness", "--model", tiny_pipeline["model"], "--data-root", dataset_copy, "--no-log",
                     "--out", tmp_path / "report.json", *FAST)
    assert result.code == 1
    assert "coverage gap" in result.err
    assert "3 labelled window(s) without a scored row" in result.err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["metrics"] is None
    assert report["coverage"]["windows_scored"] == 9
    assert report["coverage"]["audio_windows_expected"] == report["coverage"]["audio_windows_scored"] == 9


@pytest.mark.slow
def test_undecodable_audio_is_a_coverage_gap(tiny_pipeline, dataset_copy, tmp_path):
    (dataset_copy / "train_soundscapes" / S22_SOUNDSCAPE.name).write_bytes(b"not audio at all" * 100)
    result = run_cli("harness", "--model", tiny_pipeline["model"], "--data-root", dataset_copy, "--no-log",
                     "--out", tmp_path / "report.json", *FAST)
    assert result.code == 1
    assert f"{S22_SOUNDSCAPE.name}: not decodable" in result.err


@pytest.mark.slow
def test_label_outside_the_taxonomy_is_an_error(tiny_pipeline, dataset_copy, tmp_path):
    labels = dataset_copy / "train_soundscapes_labels.csv"
    labels.write_text(labels.read_text().replace("22961;23158", "22961;notaspecies;23158", 1))
    result = run_cli("harness", "--model", tiny_pipeline["model"], "--data-root", dataset_copy, "--no-log",
                     "--out", tmp_path / "report.json")
    assert result.code == 2
    assert "label 'notaspecies' is not in the taxonomy" in result.err


@pytest.mark.slow
def test_misaligned_label_window_is_an_error(tiny_pipeline, dataset_copy, tmp_path):
    with open(dataset_copy / "train_soundscapes_labels.csv", "a") as handle:
        handle.write(f"{S22_SOUNDSCAPE.name},00:00:02,00:00:07,22961\n")
    result = run_cli("harness", "--model", tiny_pipeline["model"], "--data-root", dataset_copy, "--no-log",
                     "--out", tmp_path / "report.json")
    assert result.code == 2
    assert "is not one 5 s window of the grid" in result.err


@pytest.mark.slow
def test_site_without_labelled_audio_is_an_error(tiny_pipeline, tmp_path):
    result = run_cli("harness", "--model", tiny_pipeline["model"], "--site", "S03", "--no-log",
                     "--out", tmp_path / "report.json")
    assert result.code == 2
    assert "no labelled soundscape of site S03 has audio" in result.err


@pytest.mark.slow
def test_bundle_goes_through_load_scorer(tiny_pipeline, tmp_path, monkeypatch):
    import infer.loading

    calls = []
    original = infer.loading.load_scorer

    def fake_load_scorer(model=None, bundle=None, config=None, taxonomy_path=None, threads=None):
        calls.append({"model": model, "bundle": bundle, "config": config})
        # Stand in for a one-member bundle with the field defaults.
        scorer, provenance = original(model=tiny_pipeline["model"], config=ScoringConfig())
        provenance.kind = "bundle"
        return scorer, provenance

    monkeypatch.setattr(infer.loading, "load_scorer", fake_load_scorer)
    result = run_cli("harness", "--bundle", tmp_path / "bundle", "--out", tmp_path / "report.json", *FAST)
    assert result.code == 0, result.err
    assert calls == [{"model": None, "bundle": tmp_path / "bundle", "config": None}]
    assert "logged to MLflow" not in result.out
    assert json.loads((tmp_path / "report.json").read_text())["model"]["kind"] == "bundle"


def test_settings_changes_skip_data_root():
    from harness.config import settings_changes

    project = load_harness_config()
    used = load_harness_config(overrides=["gates.standalone_bar=0.5", "scoring.tta_shifts=[0.0]", "data_root=/elsewhere"])
    assert settings_changes(used, project) == {
        "gates.standalone_bar": {"project": 0.75, "used": 0.5},
        "scoring.tta_shifts": {"project": [-0.5, 0.0, 0.5], "used": [0.0]},
    }
    assert settings_changes(project, project) == {}


def test_sibling_data_root_recorded_relative():
    from harness.config import portable_data_root, project_root

    assert portable_data_root(str(project_root() / ".." / "shared" / "data" / "x")) == "../shared/data/x"
    assert portable_data_root("/") == "/"
