"""Run registry on MLflow: tag names, tracking set-up, run lookup.

MLflow holds runs, metrics and artifacts (a SQLite file in the project by default, any tracking
server through MLFLOW_TRACKING_URI). The reviewed decisions live in the git-tracked ledger
(`harness.ledger`), and `harness.ledger.check_consistency` compares the two.
"""

from __future__ import annotations

import logging
import os
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
    decision_override="pantanal.decision_override",
    decision_gates="pantanal.decision_gates",
    proposal="pantanal.proposal",
    # written by train.export on the final stage's run
    export_sha256="pantanal.export_sha256",
    export_stage="pantanal.export_stage",
    model_version="pantanal.model_version",
)


class RunStoreError(LookupError):
    """A run, artifact or tracking store the registry needs cannot be found."""


REGISTERED_MODEL = "pantanal-sed"
CHAMPION_ALIAS = "champion"

# Artifact paths inside a run: the export (train.export), the harness report of a site, the
# latest gate proposal and the recorded decision.
EXPORT_MODEL_ARTIFACT = "export/model.onnx"
EXPORT_PARITY_ARTIFACT = "export/parity.json"
EXPORT_SELECTION_ARTIFACT = "export/selection.json"
PROPOSAL_ARTIFACT = "registry/proposal.json"
DECISION_ARTIFACT = "registry/decision.yaml"


def harness_prefix(site: str) -> str:
    """Metric and artifact prefix of the harness results for a site: "harness/S22"."""
    return f"harness/S{site}"


def default_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else the SQLite file `mlruns/mlflow.db` of the project (as in conf/logger)."""
    from harness.config import project_root

    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlruns' / 'mlflow.db'}"


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
