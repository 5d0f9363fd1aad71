"""Run registry on MLflow: tag names, tracking set-up, run lookup.

MLflow holds runs, metrics and artifacts (a SQLite file in the project by default, any tracking
server through MLFLOW_TRACKING_URI). The reviewed decisions live in the git-tracked ledger
(`harness.ledger`), and `harness.ledger.check_consistency` compares the two.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

log = logging.getLogger(__name__)

TAG = SimpleNamespace(
    goal="pantanal.goal",
    hypothesis="pantanal.hypothesis",
    stop_condition="pantanal.stop_condition",
    stage="pantanal.stage",
    experiment="pantanal.experiment",
    model="pantanal.model",
    git_commit="pantanal.git_commit",
    data_version="pantanal.data_version",
    data_root="pantanal.data_root",
    lineage="pantanal.lineage",
    parent_run="pantanal.parent_run_id",
    teacher="pantanal.teacher",
    exported="pantanal.exported",
    decision="pantanal.decision",
    decision_reason="pantanal.decision_reason",
    decision_reviewer="pantanal.decision_reviewer",
    decision_date="pantanal.decision_date",
    decision_sha256="pantanal.decision_sha256",
)

REGISTERED_MODEL = "pantanal-sed"
CHAMPION_ALIAS = "champion"


def configure_tracking(tracking_uri: str, experiment: str, artifact_location: str | None = None) -> str:
    """Point MLflow at `tracking_uri` and make sure `experiment` exists; return its id.

    For a SQLite URI the folder of the database file is created, so a fresh clone works with no
    server and no set-up.
    """
    import mlflow

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    existing = mlflow.get_experiment_by_name(experiment)
    if existing is not None:
        experiment_id = existing.experiment_id
    else:
        location = Path(artifact_location).resolve().as_uri() if artifact_location else None
        experiment_id = mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id
