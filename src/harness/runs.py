"""MLflow access for the harness, the registry and the dashboard.

One `RunStore` wraps an `MlflowClient` on a tracking URI (a SQLite file or a server) and offers
what the registry needs: exported runs, their artifacts and metric histories, harness results,
decision tags and the `champion` alias of the registered model.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Run
from mlflow.exceptions import MlflowException

from harness.registry import (
    CHAMPION_ALIAS,
    EXPORT_MODEL_ARTIFACT,
    REGISTERED_MODEL,
    TAG,
    RunStoreError,
    harness_prefix,
)
from infer.member import file_sha256

log = logging.getLogger(__name__)


class RunStore:
    """Runs, artifacts, tags and model aliases in one MLflow tracking store.

    Args:
        tracking_uri: MLflow tracking URI; also used as the model registry URI.

    Raises:
        RunStoreError: The URI names a SQLite file that does not exist (no run was ever tracked there).
    """

    def __init__(self, tracking_uri: str) -> None:
        if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri[len("sqlite:///"):]).is_file():
            raise RunStoreError(
                f"no MLflow database at {tracking_uri}; train and export a model first, "
                "or pass --tracking-uri (or set MLFLOW_TRACKING_URI)"
            )
        # The registry downloads small artifacts one by one; a progress bar per file is noise.
        # An explicit MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR setting is kept.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def run(self, run_id: str) -> Run:
        try:
            return self.client.get_run(run_id)
        except MlflowException as exc:
            raise RunStoreError(f"run {run_id} not found in {self.tracking_uri}") from exc

    def find_run(self, run_id: str) -> Run | None:
        try:
            return self.client.get_run(run_id)
        except MlflowException:
            return None

    def exported_run(self, run_id: str) -> Run:
        """The run, which must carry an export (the final stage's run of a recipe)."""
        run = self.run(run_id)
        if run.data.tags.get(TAG.exported) != "true":
            stage = run.data.tags.get(TAG.stage, "?")
            raise RunStoreError(
                f"run {run_id} (stage {stage}) has no exported model; only the final stage's run of an "
                "experiment carries one (see `pantanal registry show`)"
            )
        return run

    def search(self, filter_string: str = "") -> list[Run]:
        """Runs of every experiment matching `filter_string`, oldest first."""
        experiment_ids = [e.experiment_id for e in self.client.search_experiments()]
        if not experiment_ids:
            return []
        runs, token = [], None
        while True:
            page = self.client.search_runs(experiment_ids, filter_string, max_results=1000,
                                           order_by=["attributes.start_time ASC"], page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def exported_runs(self) -> list[Run]:
        return self.search(f"tags.`{TAG.exported}` = 'true'")

    def decided_runs(self) -> list[Run]:
        """Return the runs with a decision tag, whether or not the ledger has an entry for them."""
        return self.search(f"tags.`{TAG.decision}` LIKE '%'")

    def json_artifact(self, run_id: str, path: str) -> dict | None:
        """Load a JSON artifact of the run, or return None when the run has none at `path`."""
        with tempfile.TemporaryDirectory() as scratch:
            try:
                local = self.client.download_artifacts(run_id, path, scratch)
            except (MlflowException, OSError):
                return None
            return json.loads(Path(local).read_text())

    def model_file(self, run_id: str, folder: Path) -> Path:
        """Download the run's exported ONNX into `folder` and check it against the recorded sha256."""
        run = self.exported_run(run_id)
        target = Path(folder) / run_id
        target.mkdir(parents=True, exist_ok=True)
        try:
            local = Path(self.client.download_artifacts(run_id, EXPORT_MODEL_ARTIFACT, str(target)))
        except (MlflowException, OSError) as exc:
            raise RunStoreError(f"run {run_id} has no artifact {EXPORT_MODEL_ARTIFACT}: {exc}") from exc
        expected = run.data.tags.get(TAG.export_sha256)
        actual = file_sha256(local)
        if expected != actual:
            raise RunStoreError(
                f"run {run_id}: {EXPORT_MODEL_ARTIFACT} has sha256 {actual[:12]}, the run records {str(expected)[:12]}"
            )
        return local

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]

    def log_harness_report(self, run_id: str, report: dict) -> None:
        """Store a complete harness report in the run: the JSON artifact and its headline metrics."""
        prefix = harness_prefix(report["site"])
        metrics = report["metrics"]
        self.client.log_text(run_id, json.dumps(report, indent=2), f"{prefix}/report.json")
        values = {
            f"{prefix}/macro_auc": metrics["macro_auc"],
            f"{prefix}/padded_cmap": metrics["padded_cmap"],
            f"{prefix}/ci_low": metrics["bootstrap"]["low"],
            f"{prefix}/ci_high": metrics["bootstrap"]["high"],
            f"{prefix}/bootstrap_std": metrics["bootstrap"]["std"],
            f"{prefix}/windows": report["coverage"]["windows_scored"],
        }
        values.update({f"{prefix}/taxon/{name}": value for name, value in metrics["taxon_auc"].items()})
        training = report.get("training") or {}
        if training.get("site_auc") is not None:
            values[f"{prefix}/training_site_auc"] = training["site_auc"]
        now = int(time.time() * 1000)
        # MLflow stores no None; an undefined AUC is simply not logged.
        batch = [Metric(key, float(value), now, 0) for key, value in values.items() if value is not None]
        self.client.log_batch(run_id, metrics=batch)

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)

    def champion_version(self) -> str | None:
        """Model version the `champion` alias points at, or None."""
        try:
            return str(self.client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION_ALIAS).version)
        except MlflowException:
            return None

    def model_version_run(self, version: str) -> str | None:
        """Run id of a version of the registered model, or None when there is no such version."""
        try:
            return self.client.get_model_version(REGISTERED_MODEL, version).run_id
        except MlflowException:
            return None

    def set_champion_version(self, version: str | None) -> None:
        """Point the `champion` alias at `version`, or delete the alias when `version` is None."""
        if version is None:
            if self.champion_version() is not None:
                self.client.delete_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS)
            return
        self.client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS, version)
