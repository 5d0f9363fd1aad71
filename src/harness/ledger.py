"""The decision ledger: reviewed promote / reject / hold decisions, kept in git beside MLflow.

    registry/decisions/<run id>.yaml   the latest decision on a run, its gates and its history
    registry/champion.yaml             the champion ensemble: every run whose latest decision is promote

`decide` writes the ledger entry, the run's `pantanal.decision*` tags and (for the champion) the
`champion.yaml` file and the MLflow `champion` alias in one step. Each entry carries the sha256 of
its own canonical JSON form, and the same hash is a tag of the run, so `check_consistency` finds
an entry edited by hand as well as any disagreement between the ledger and MLflow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from harness.config import HarnessConfig, load_harness_config, project_root, settings_changes
from harness.gates import Proposal, proposal_settings, propose
from harness.registry import CHAMPION_ALIAS, DECISION_ARTIFACT, PROPOSAL_ARTIFACT, REGISTERED_MODEL, TAG
from infer.atomic import atomic_write_text

log = logging.getLogger(__name__)

DECISIONS = ("promote", "reject", "hold")
LEDGER_SCHEMA = "1"
# MLflow rejects longer tag values on some backends; the reason is stored as a tag.
MAX_REASON_CHARS = 4000


class LedgerError(ValueError):
    """A decision cannot be recorded as requested (unknown run, failing gates, missing reviewer)."""


def default_registry_dir() -> Path:
    """PANTANAL_REGISTRY_DIR, else `registry/` of the project."""
    return Path(os.environ.get("PANTANAL_REGISTRY_DIR", project_root() / "registry")).resolve()


def entry_sha256(entry: dict) -> str:
    """sha256 of the entry's canonical JSON (sorted keys, no spaces), without its own `sha256` field."""
    body = {key: value for key, value in entry.items() if key != "sha256"}
    # default=str: a hand-edited date that YAML reads as a datetime still hashes (to another value).
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decision_tags(entry: dict) -> dict[str, str]:
    """Build the MLflow tags that mirror a ledger entry."""
    failed = [gate["name"] for gate in entry["proposal"]["gates"] if not gate["passed"]]
    return {
        TAG.decision: entry["decision"],
        TAG.decision_reason: entry["reason"],
        TAG.decision_reviewer: entry["reviewer"],
        TAG.decision_date: entry["date"],
        TAG.decision_override: "true" if entry["override"] else "false",
        TAG.decision_gates: "failed: " + ", ".join(failed) if failed else "passed",
        TAG.decision_sha256: entry["sha256"],
    }


@dataclass
class Ledger:
    """The ledger folder: `decisions/<run id>.yaml` and `champion.yaml`."""

    root: Path

    @property
    def decisions_dir(self) -> Path:
        return self.root / "decisions"

    @property
    def champion_path(self) -> Path:
        return self.root / "champion.yaml"

    def path_of(self, run_id: str) -> Path:
        return self.decisions_dir / f"{run_id}.yaml"

    def read(self, run_id: str) -> dict | None:
        path = self.path_of(run_id)
        return _load_yaml(path) if path.is_file() else None

    def read_all(self) -> tuple[dict[str, dict], dict[str, str]]:
        """Entries by run id (the file stem), and the files that could not be read, with the error."""
        entries, unreadable = {}, {}
        for path in sorted(self.decisions_dir.glob("*.yaml")) if self.decisions_dir.is_dir() else []:
            try:
                entries[path.stem] = _load_yaml(path)
            except (yaml.YAMLError, LedgerError) as exc:
                unreadable[path.stem] = str(exc)
        return entries, unreadable

    def write(self, entry: dict) -> None:
        atomic_write_text(self.path_of(entry["run_id"]), dump_entry(entry))

    def read_champion(self) -> dict | None:
        return _load_yaml(self.champion_path) if self.champion_path.is_file() else None

    def champion_members(self) -> list[dict]:
        champion = self.read_champion()
        return list(champion.get("members") or []) if champion else []

    def write_champion(self, champion: dict) -> None:
        header = ("# The champion ensemble, written by `pantanal registry decide` from the decisions in\n"
                  "# decisions/. Do not edit by hand: `pantanal registry check` compares it with them and MLflow.\n")
        atomic_write_text(self.champion_path, header + yaml.safe_dump(champion, sort_keys=False, allow_unicode=True))


def dump_entry(entry: dict) -> str:
    header = (f"# Decision on MLflow run {entry['run_id']}, written by `pantanal registry decide`.\n"
              "# Do not edit: the sha256 below and the run's MLflow tags must match this content.\n")
    return header + yaml.safe_dump(entry, sort_keys=False, allow_unicode=True, width=100)


def champion_from_entries(entries: dict[str, dict]) -> dict:
    """Derive the champion ensemble from the entries: promoted runs, oldest promotion first.

    The `champion` alias points at the model version of the latest promotion.
    """
    promoted = sorted((e for e in entries.values() if e.get("decision") == "promote"), key=lambda e: (e["date"], e["run_id"]))
    members = [
        {
            "run_id": e["run_id"], "experiment": e.get("experiment"), "model_version": e["model"]["version"],
            "export_sha256": e["model"]["export_sha256"], "harness_macro_auc": e["model"].get("harness_macro_auc"),
            "promoted": e["date"], "reviewer": e["reviewer"],
        }
        for e in promoted
    ]
    return {
        "registered_model": REGISTERED_MODEL,
        "alias": CHAMPION_ALIAS,
        "alias_version": members[-1]["model_version"] if members else None,
        "members": members,
    }


def default_reviewer() -> str:
    """`git config user.name` in the project, else $USER; empty when neither is set."""
    try:
        result = subprocess.run(["git", "config", "user.name"], cwd=project_root(), capture_output=True, text=True)
        name = result.stdout.strip()
    except OSError:
        name = ""
    return name or os.environ.get("USER", "").strip()


def current_proposal(store, ledger: Ledger, run_id: str, config: HarnessConfig, recompute: bool = False) -> Proposal:
    """Reuse the run's latest proposal when it still applies (same export, champion, settings), else propose again."""
    run = store.exported_run(run_id)
    champion = sorted(m["run_id"] for m in ledger.champion_members() if m["run_id"] != run_id)
    latest = None if recompute else store.json_artifact(run_id, PROPOSAL_ARTIFACT)
    if latest is not None:
        proposal = Proposal.from_dict(latest)
        if (proposal.model_sha256 == run.data.tags.get(TAG.export_sha256) and sorted(proposal.champion) == champion
                and proposal.settings == proposal_settings(config)):
            log.info("using the proposal of %s computed at %s", run_id, proposal.computed_at)
            return proposal
        log.info("the latest proposal of %s is stale (other export, champion or settings); recomputing", run_id)
    return propose(store, ledger.champion_members(), run_id, config)


def decide(store, ledger: Ledger, run_id: str, decision: str, reason: str, config: HarnessConfig,
           reviewer: str | None = None, override: bool = False, recompute: bool = False,
           project: HarnessConfig | None = None) -> dict:
    """Record a reviewed decision on a run in the ledger and in MLflow.

    Args:
        store: `harness.runs.RunStore` of the run.
        ledger: The ledger folder.
        run_id: The candidate (an exported run).
        decision: "promote", "reject" or "hold".
        reason: Why, in the reviewer's words.
        config: Harness config the gates are computed with.
        reviewer: Name recorded with the decision; default `default_reviewer()`.
        override: Promote although gates fail, or with gate or scoring settings other than the
            project's; recorded as such in the entry and the tags.
        recompute: Compute the gates again even when the latest proposal still applies.
        project: The project's settings (`conf/harness/default.yaml` when None). A promotion
            judged with other settings (a lowered bar, say) is an override.

    Returns:
        The ledger entry.

    Raises:
        LedgerError: Unknown decision, empty or too long reason, no reviewer, or a promotion whose
            gates fail, or that uses settings other than the project's, without `override`.

    Effects:
        Sets the run's decision tags and logs `registry/decision.yaml` to it, then writes
        `decisions/<run id>.yaml`, `champion.yaml` and the `champion` alias.
    """
    entry = _new_entry(store, ledger, run_id, decision, reason, config, reviewer, override, recompute, project)
    store.set_tags(run_id, decision_tags(entry))
    store.log_text(run_id, dump_entry(entry), DECISION_ARTIFACT)
    ledger.write(entry)
    update_champion(store, ledger)
    log.info("recorded %s of run %s by %s", decision, run_id, entry["reviewer"])
    return entry


def _new_entry(store, ledger: Ledger, run_id: str, decision: str, reason: str, config: HarnessConfig,
               reviewer: str | None, override: bool, recompute: bool, project: HarnessConfig | None) -> dict:
    reason, reviewer = _checked_request(decision, reason, reviewer)
    changes = settings_changes(config, load_harness_config() if project is None else project)
    proposal = current_proposal(store, ledger, run_id, config, recompute)

    # Lowering a bar on the command line must not make a promotion look like one that passed the
    # project's gates, so settings other than the project's count as an override too.
    overridden = decision == "promote" and (not proposal.passed or bool(changes))
    if overridden and not override:
        problems = [f"{g.name}: {g.detail}" for g in proposal.gates if not g.passed]
        problems += [f"{key} is {change['used']} where the project sets {change['project']}"
                     for key, change in changes.items()]
        raise LedgerError(f"run {run_id} does not meet the promotion rules ({'; '.join(problems)}); pass "
                          "--override to promote it anyway (the ledger records the override)")
    if override and not overridden:
        log.info("--override has no effect: the gates do not block this %s", decision)

    run = store.run(run_id)
    tags = run.data.tags
    standalone = next(g for g in proposal.gates if g.name == "standalone")
    previous = ledger.read(run_id)
    history = list(previous.get("history") or []) if previous else []
    if previous:
        history.append({k: previous.get(k) for k in ("decision", "reason", "reviewer", "date", "override", "sha256")})
    entry = {
        "schema_version": LEDGER_SCHEMA,
        "run_id": run_id,
        "experiment": tags.get(TAG.experiment),
        "goal": tags.get(TAG.goal),
        "decision": decision,
        "reason": reason,
        "reviewer": reviewer,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "override": overridden,
        "settings_changed": changes,
        "model": {
            "registered_model": REGISTERED_MODEL, "version": tags.get(TAG.model_version),
            "export_sha256": tags.get(TAG.export_sha256), "stage": tags.get(TAG.stage),
            "harness_macro_auc": standalone.value,
        },
        "proposal": proposal.to_dict(),
        "history": history,
    }
    entry["sha256"] = entry_sha256(entry)
    return entry


def _checked_request(decision: str, reason: str, reviewer: str | None) -> tuple[str, str]:
    """Validate a decision request; return the stripped reason and the reviewer's name."""
    if decision not in DECISIONS:
        raise LedgerError(f"decision {decision!r} is not one of {DECISIONS}")
    reason = (reason or "").strip()
    if not reason:
        raise LedgerError("a decision needs a reason: pass --reason '...'")
    if len(reason) > MAX_REASON_CHARS:
        raise LedgerError(f"the reason has {len(reason)} characters; keep it under {MAX_REASON_CHARS}")
    reviewer = (reviewer or default_reviewer()).strip()
    if not reviewer:
        raise LedgerError("no reviewer: pass --reviewer NAME or set `git config user.name`")
    return reason, reviewer


def update_champion(store, ledger: Ledger) -> dict:
    """Rewrite champion.yaml from the ledger and point the `champion` alias at its latest member."""
    entries, _ = ledger.read_all()
    champion = champion_from_entries(entries)
    champion["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ledger.write_champion(champion)
    store.set_champion_version(champion["alias_version"])
    return champion


@dataclass
class Disagreement:
    """One inconsistency found by `check_consistency`; `run_id` is None for a ledger-wide one."""

    run_id: str | None
    message: str

    def __str__(self) -> str:
        return f"run {self.run_id}: {self.message}" if self.run_id else self.message


def check_consistency(store, ledger: Ledger) -> list[Disagreement]:
    """List every disagreement between ledger entries, their own hashes, MLflow tags, champion.yaml and the alias."""
    entries, unreadable = ledger.read_all()
    problems = [Disagreement(run_id, f"ledger entry cannot be read: {error}") for run_id, error in unreadable.items()]
    for run_id, entry in entries.items():
        problems += _check_entry(store, run_id, entry)

    for run in store.decided_runs():
        run_id = run.info.run_id
        if run_id not in entries and run_id not in unreadable:
            problems.append(Disagreement(run_id, f"MLflow records decision {run.data.tags[TAG.decision]!r} "
                                                 f"but the ledger has no {ledger.path_of(run_id).name}"))
    problems += _check_champion(store, ledger, {k: v for k, v in entries.items() if isinstance(v, dict)})
    return problems


def _check_entry(store, run_id: str, entry: dict) -> list[Disagreement]:
    if not isinstance(entry, dict) or "sha256" not in entry:
        return [Disagreement(run_id, "ledger entry is not a decision record (no sha256)")]
    problems = []
    if entry.get("run_id") != run_id:
        problems.append(Disagreement(run_id, f"ledger file names run {entry.get('run_id')!r} inside"))
    if entry_sha256(entry) != entry["sha256"]:
        problems.append(Disagreement(run_id, "ledger entry was edited after it was recorded (its sha256 no longer matches)"))
    run = store.find_run(run_id)
    if run is None:
        problems.append(Disagreement(run_id, f"ledger entry names a run that is not in {store.tracking_uri}"))
        return problems
    try:
        expected = decision_tags(entry)
    except (KeyError, TypeError) as exc:
        return problems + [Disagreement(run_id, f"ledger entry lacks a field: {exc}")]
    differing = [key for key, value in expected.items() if run.data.tags.get(key) != value]
    if differing:
        details = ", ".join(f"{key}: ledger {expected[key][:40]!r} vs MLflow {str(run.data.tags.get(key))[:40]!r}"
                            for key in differing)
        problems.append(Disagreement(run_id, f"ledger and MLflow disagree on {details}"))
    return problems


def _check_champion(store, ledger: Ledger, entries: dict[str, dict]) -> list[Disagreement]:
    try:
        expected = champion_from_entries({k: v for k, v in entries.items() if "model" in v and "date" in v})
    except (KeyError, TypeError) as exc:
        return [Disagreement(None, f"cannot derive the champion from the ledger: {exc}")]
    recorded = ledger.read_champion() or {"members": [], "alias_version": None}
    problems = []
    fields = ("run_id", "model_version", "export_sha256")
    expected_members = {m["run_id"]: {k: m[k] for k in fields} for m in expected["members"]}
    recorded_members = {m.get("run_id"): {k: m.get(k) for k in fields} for m in recorded.get("members") or []}
    for run_id in sorted(set(expected_members) | set(recorded_members), key=str):
        if expected_members.get(run_id) != recorded_members.get(run_id):
            where = "missing from" if run_id not in recorded_members else (
                "listed in" if run_id not in expected_members else "recorded differently in")
            problems.append(Disagreement(run_id, f"champion member {where} {ledger.champion_path.name} "
                                                 "compared with the promote decisions"))
    if recorded.get("alias_version") != expected["alias_version"]:
        problems.append(Disagreement(None, f"{ledger.champion_path.name} names alias version "
                                           f"{recorded.get('alias_version')!r}, the ledger implies {expected['alias_version']!r}"))
    alias_version = store.champion_version()
    if alias_version != expected["alias_version"]:
        # Name the run the alias should point at, else the run it wrongly points at.
        named = expected["members"][-1]["run_id"] if expected["members"] else store.model_version_run(alias_version)
        problems.append(Disagreement(named, f"MLflow alias {CHAMPION_ALIAS!r} points at version {alias_version!r}, "
                                            f"the ledger implies {expected['alias_version']!r}"))
    return problems


def _load_yaml(path: Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict):
        raise LedgerError(f"{path} does not contain a YAML mapping")
    return data
