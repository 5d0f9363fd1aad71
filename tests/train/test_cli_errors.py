"""Training-side commands report input mistakes in one line with exit status 2, not a traceback."""

import pytest

from infer.cli import main


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["data", "check", "/nonexistent/dataset"], "is not a folder"),
        (["train", "experiment=no_such_experiment"], "Could not find 'experiment/no_such_experiment'"),
        (["train", "experiment=demo_b0", "run.goal=null"], "without run.goal"),
        (["export", "experiment=demo_b0", "paths.output_dir=/nonexistent/outputs"], "no checkpoint of the final stage"),
        (["train", "experiment=demo_b0", "ns.round=1"], "there is no key ns.round; did you mean ns.rounds?"),
        (["train", "experiment=demo_b0", "stage=ns2", "ns.rounds=1"], "stage=ns2 is past ns.rounds=1"),
        (["pseudo-label", "experiment=demo_b0", "stage=ns3"], "stage=ns3 is past ns.rounds=2"),
        (["recipe", "experiment=demo_b0", "ns.rounds=4", "paths.output_dir=/nonexistent/outputs"],
         "ns.rounds=4 needs stage/ns4.yaml"),
    ],
    ids=["missing dataset", "unknown experiment", "missing goal", "untrained export", "misspelt key", "stage past rounds",
         "pseudo-label past rounds", "rounds without stage configs"],
)
def test_input_error_exits_2(argv, expected, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ")
    assert expected in error
    assert "Traceback" not in error


def test_folder_given_as_model_points_to_bundle(tmp_path):
    from infer.member import OnnxMember

    with pytest.raises(FileNotFoundError, match="--bundle"):
        OnnxMember(tmp_path)


def test_export_checks_tracking_store_first(tmp_path):
    from omegaconf import OmegaConf

    from train.export import TrackingRunError, require_stage_run

    store = f"sqlite:///{tmp_path / 'other' / 'mlflow.db'}"
    cfg = OmegaConf.create({"logger": {"tracking_uri": store, "experiment": "pantanal",
                                       "artifact_location": str(tmp_path / "artifacts")}})
    with pytest.raises(TrackingRunError) as error:
        require_stage_run(cfg, "0123456789abcdef0123456789abcdef", "ns2")
    assert "0123456789abcdef0123456789abcdef" in str(error.value)
    assert store in str(error.value)
    assert "MLFLOW_TRACKING_URI" in str(error.value)
