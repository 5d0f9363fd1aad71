"""Registry entries of bundle members: the reviewed decision and the sha256 of the exported file.

Two sources, each optional:

- the git-tracked ledger, `registry/decisions/<run id>.yaml`, whose `decision` key is the
  reviewed decision (promote, reject or hold);
- the MLflow run that produced the member: `pantanal.decision` (written with the ledger entry)
  and `pantanal.export_sha256` (written by the export).

The ledger wins over the MLflow tag for the decision, because the ledger is the reviewed record.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from harness.registry import TAG

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXPORT_SHA256_TAG = "pantanal.export_sha256"
PROMOTE = "promote"


@dataclass(frozen=True)
class RegistryEntry:
    """The registry's record of one run.

    Attributes:
        run_id: The MLflow run id.
        found: The run exists in the tracking store (False also when no store is configured).
        decision: Reviewed decision, or None when none was recorded.
        decision_source: "ledger", "mlflow" or None.
        export_sha256: sha256 of the exported model recorded on the run, or None.
    """

    run_id: str
    found: bool
    decision: str | None
    decision_source: str | None
    export_sha256: str | None


def resolve_tracking_uri(value: str | None) -> str | None:
    """Resolve a command's --tracking-uri: None picks the default, "none" turns MLflow lookups off."""
    if value is None:
        return default_tracking_uri()
    return None if value.lower() == "none" else value


def default_tracking_uri() -> str | None:
    """MLFLOW_TRACKING_URI, else the project's `mlruns/mlflow.db` when that file exists, else None."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    database = PROJECT_ROOT / "mlruns" / "mlflow.db"
    return f"sqlite:///{database}" if database.is_file() else None


def default_ledger_dir() -> Path | None:
    folder = PROJECT_ROOT / "registry" / "decisions"
    return folder if folder.is_dir() else None


class MemberRegistry:
    """Look up runs in the ledger and in MLflow.

    Args:
        tracking_uri: MLflow tracking URI; None means no tracking store is configured.
        ledger_dir: Folder of `<run id>.yaml` decisions; None means no ledger.
    """

    def __init__(self, tracking_uri: str | None, ledger_dir: Path | None) -> None:
        if tracking_uri and tracking_uri.startswith("sqlite:///"):
            database = Path(tracking_uri[len("sqlite:///"):])
            if not database.is_file():
                raise FileNotFoundError(f"MLflow database {database} not found (tracking URI {tracking_uri})")
        self.tracking_uri = tracking_uri
        self.ledger_dir = Path(ledger_dir) if ledger_dir is not None else None
        self._client = None

    @property
    def configured(self) -> bool:
        return self.tracking_uri is not None or self.ledger_dir is not None

    def describe(self) -> str:
        parts = []
        if self.tracking_uri:
            parts.append(f"MLflow {self.tracking_uri}")
        if self.ledger_dir:
            parts.append(f"ledger {self.ledger_dir}")
        return ", ".join(parts) or "none"

    def entry(self, run_id: str | None) -> RegistryEntry:
        """Look up `run_id`; an unknown or missing run id gives found=False."""
        if not run_id:
            return RegistryEntry("", False, None, None, None)
        tags = self._run_tags(run_id)
        decision, source = self._ledger_decision(run_id), "ledger"
        if decision is None and tags is not None and tags.get(TAG.decision):
            decision, source = tags[TAG.decision], "mlflow"
        return RegistryEntry(
            run_id=run_id,
            found=tags is not None,
            decision=decision,
            decision_source=source if decision is not None else None,
            export_sha256=(tags or {}).get(EXPORT_SHA256_TAG),
        )

    def _ledger_decision(self, run_id: str) -> str | None:
        if self.ledger_dir is None:
            return None
        path = self.ledger_dir / f"{run_id}.yaml"
        if not path.is_file():
            return None
        import yaml

        record = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        decision = record.get("decision") if isinstance(record, dict) else None
        if not isinstance(decision, str):
            raise ValueError(f"{path} has no string `decision` key; found {type(decision).__name__}")
        return decision

    def _run_tags(self, run_id: str) -> dict[str, str] | None:
        if self.tracking_uri is None:
            return None
        from mlflow.exceptions import MlflowException

        try:
            return dict(self._mlflow().get_run(run_id).data.tags)
        except MlflowException:
            return None

    def _mlflow(self):
        if self._client is None:
            # Imported here: MLflow takes seconds to import, and most commands never need it.
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client
