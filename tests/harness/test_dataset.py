"""The BirdCLEF-layout validator and the window manifests, on the real mini dataset and broken copies."""

import shutil

import pandas as pd
import pytest

from harness.dataset import DatasetError, check_dataset, parse_clock, parse_label_list, site_of
from harness.manifests import ManifestConfig, build_manifests
from tests.conftest import EXTRA, MINI


@pytest.fixture
def mini_copy(tmp_path):
    root = tmp_path / "mini"
    shutil.copytree(MINI, root)
    return root


def test_real_mini_dataset_is_valid():
    report = check_dataset(MINI)
    assert report.ok, report.format()
    assert report.counts["classes"] == 234
    assert report.counts["focal_clips"] == 9
    assert report.sites == {"22": {"soundscapes": 1, "labelled_windows": 12}}
    assert report.warnings["duplicated rows in train_soundscapes_labels.csv (dropped)"] == ["739 rows"]


def test_corrupted_labels_file_is_reported_with_names(mini_copy):
    labels = pd.read_csv(mini_copy / "train_soundscapes_labels.csv", dtype=str)
    labels.loc[0, "primary_label"] = "22961;notaspecies"
    labels.loc[1, "end"] = "00:00:00"
    labels.loc[2, "start"] = "soon"
    labels.to_csv(mini_copy / "train_soundscapes_labels.csv", index=False)
    report = check_dataset(mini_copy, open_audio=False)
    assert not report.ok
    assert report.errors["soundscape labels not in the taxonomy"] == ["notaspecies x1"]
    bad_times = report.errors["soundscape label rows with invalid start/end times"]
    assert len(bad_times) == 2
    assert any("soon" in entry for entry in bad_times)
    assert "problem(s) must be fixed" in report.format()


def test_missing_column_is_a_clear_error(mini_copy):
    labels = pd.read_csv(mini_copy / "train_soundscapes_labels.csv", dtype=str).drop(columns=["end"])
    labels.to_csv(mini_copy / "train_soundscapes_labels.csv", index=False)
    with pytest.raises(DatasetError, match=r"lacks the columns \['end'\]"):
        check_dataset(mini_copy)


def test_missing_unknown_and_unreadable_focal_audio(mini_copy):
    (mini_copy / "train_audio" / "1161364" / "iNat1114648.ogg").unlink()
    (mini_copy / "train_audio" / "1176823" / "iNat145706.ogg").write_bytes(b"not audio at all")
    train = pd.read_csv(mini_copy / "train.csv", dtype=str)
    train.loc[3, "primary_label"] = "999999"
    train.loc[4, "secondary_labels"] = "['1161364', 'ghost']"
    train.to_csv(mini_copy / "train.csv", index=False)
    report = check_dataset(mini_copy)
    assert report.errors["focal clips listed in train.csv whose audio is missing"] == ["1161364/iNat1114648.ogg"]
    assert report.errors["primary labels of train.csv not in the taxonomy"] == ["999999 x1"]
    assert any("iNat145706.ogg" in entry for entry in report.errors["unreadable audio files"])
    (mini_copy / "train_audio" / "1176823" / "iNat145706.ogg").write_bytes(b"")
    unreadable = check_dataset(mini_copy).errors["unreadable audio files"]
    assert any("iNat145706.ogg: empty: " in entry for entry in unreadable), unreadable
    assert report.warnings["secondary labels not in the taxonomy (ignored in training)"] == ["ghost x1"]


def test_helpers():
    assert site_of("BC2026_Train_0039_S22_20211231_201500.ogg") == "22"
    assert site_of("nosite.ogg") is None
    assert parse_clock("00:01:05") == 65.0
    assert parse_label_list("['a', 'b']") == ["a", "b"]
    assert parse_label_list("[]") == []
    with pytest.raises(ValueError):
        parse_label_list("a;b")


def test_manifests_keep_heldout_site_out_of_training(tmp_path):
    config = ManifestConfig(extra_unlabelled=(str(EXTRA / "1min.wav"),))
    tables = build_manifests(MINI, tmp_path, config)
    assert len(tables["heldout"]) == 12
    assert tables["heldout"]["row_id"].str.endswith(tuple(f"_{s}" for s in range(5, 65, 5))).all()
    assert len(tables["soundscape_labelled"]) == 0
    assert not tables["unlabelled"]["path"].str.contains("_S22_").any()
    assert len(tables["unlabelled"]) == 12
    short = tables["focal"][tables["focal"]["window_id"].str.startswith("1161364/iNat1264238.ogg")]
    assert len(short) == 1
    assert short.iloc[0]["end_s"] == pytest.approx(0.288, abs=1e-3)
    assert (tmp_path / "summary.json").is_file()


def test_empty_folder_names_every_missing_part(tmp_path):
    with pytest.raises(DatasetError) as error:
        check_dataset(tmp_path)
    for part in ("taxonomy.csv", "train.csv", "train_audio/", "train_soundscapes/", "train_soundscapes_labels.csv"):
        assert part in str(error.value)


def test_report_names_the_first_ten_or_all(mini_copy):
    (mini_copy / "train_soundscapes_labels.csv").unlink()
    shutil.rmtree(mini_copy / "train_audio")
    report = check_dataset(mini_copy, open_audio=False)
    assert report.warnings["optional parts of the layout that are absent"] == ["train_audio/", "train_soundscapes_labels.csv"]
    missing = report.errors["focal clips listed in train.csv whose audio is missing"]
    assert len(missing) == 9
    report.errors["focal clips listed in train.csv whose audio is missing"] = missing + [f"x/{i}.ogg" for i in range(5)]
    assert "(4 more: --all-names lists them" in report.format()
    assert "x/4.ogg" in report.format(max_names=None)
