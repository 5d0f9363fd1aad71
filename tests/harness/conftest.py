"""Fixtures for the harness and registry tests: a second trained run and the review scenario.

Both runs share the MLflow store of the session's `tiny_pipeline`; the ledger of the scenario lives
in a temporary folder. Commands run in-process through `infer.cli.main`, as `pantanal` runs them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, training_overrides

# Fewer bootstrap resamples than the default 1,000: the tests check the plumbing, not the interval.
FAST = ["--set", "bootstrap.resamples=200"]
# Tiny models score near chance: one bar no model reaches, one every model passes.
UNREACHABLE_BAR = ["--set", "gates.standalone_bar=0.99"]
NO_BAR = ["--set", "gates.standalone_bar=0.0"]


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: object) -> CliResult:
    """Run `pantanal <args>` in this process and capture its exit status and output."""
    from infer.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def tracking_uri(tiny_pipeline) -> str:
    return f"sqlite:///{tiny_pipeline['dir']}/mlflow.db"


@pytest.fixture(scope="session")
def second_run(tiny_pipeline, tmp_path_factory) -> dict:
    """Another recipe with a different seed and one Noisy Student round, tracked in the same store."""
    from train.cli import run_recipe

    out_dir = tmp_path_factory.mktemp("second_run")
    shared = [o for o in tiny_pipeline["overrides"] if o.startswith(("logger.tracking_uri=", "logger.artifact_location="))]
    own = [o for o in training_overrides(out_dir, "experiment_name=other", "seed=3", "ns.rounds=1")
           if not o.startswith(("logger.tracking_uri=", "logger.artifact_location="))]
    record = run_recipe(own + shared)
    return {"record": record, "model": Path(record["model"]), "run_id": record["run_id"]}


@pytest.fixture(scope="session")
def registry_scenario(tiny_pipeline, second_run, tracking_uri, tmp_path_factory) -> dict:
    """Harness both runs, then review them: a blocked promotion, a hold, an override, a promotion, a reject."""
    work = tmp_path_factory.mktemp("registry_scenario")
    registry = work / "registry"

    # The project's own gate settings, as a team would commit them for tiny models: no bar, and
    # the fast bootstrap. Settings passed on the command line that differ make a promotion an override.
    conf = Path(shutil.copytree(PROJECT_ROOT / "conf", work / "conf"))
    harness_yaml = conf / "harness" / "default.yaml"
    text = harness_yaml.read_text().replace("standalone_bar: 0.75", "standalone_bar: 0.0")
    harness_yaml.write_text(text.replace("resamples: 1000", "resamples: 200"))
    previous_conf = os.environ.get("PANTANAL_CONFIG_DIR")
    os.environ["PANTANAL_CONFIG_DIR"] = str(conf)
    try:
        return _review(tiny_pipeline, second_run, tracking_uri, work, registry)
    finally:
        if previous_conf is None:
            os.environ.pop("PANTANAL_CONFIG_DIR")
        else:
            os.environ["PANTANAL_CONFIG_DIR"] = previous_conf


def _review(tiny_pipeline, second_run, tracking_uri: str, work: Path, registry: Path) -> dict:
    first, second = tiny_pipeline["record"]["run_id"], second_run["run_id"]
    common = ["--registry", registry, "--tracking-uri", tracking_uri]
    results: dict = {"first": first, "second": second, "registry": registry, "work": work}

    results["harness_first"] = run_cli("harness", "--model", tiny_pipeline["model"], "--tracking-uri", tracking_uri,
                                       "--out", work / "first.json", *FAST)
    results["harness_second"] = run_cli("harness", "--run", second, "--tracking-uri", tracking_uri,
                                        "--out", work / "second.json", *FAST)

    def decide(run_id: str, decision: str, reason: str, *extra: object) -> CliResult:
        return run_cli("registry", "decide", run_id, decision, "--reason", reason, *common, *FAST, *extra)

    results["blocked"] = decide(first, "promote", "looks fine", "--reviewer", "Ana", *UNREACHABLE_BAR)
    results["ledger_after_blocked"] = (registry / "decisions" / f"{first}.yaml").exists()
    results["hold"] = decide(first, "hold", "below the bar for now", "--reviewer", "Ana", *UNREACHABLE_BAR)
    results["override"] = decide(first, "promote", "needed for the field demo", "--reviewer", "Ana", "--override",
                                 *UNREACHABLE_BAR)
    results["override_entry"] = yaml.safe_load((registry / "decisions" / f"{first}.yaml").read_text())
    results["lax_settings"] = decide(first, "promote", "a laxer blend gate", "--reviewer", "Ana",
                                     "--set", "gates.noise_multiplier=0.5")
    results["promote"] = decide(first, "promote", "first champion: all gates pass", "--reviewer", "Ana", *NO_BAR)

    results["propose_second"] = run_cli("registry", "propose", second, "--json", *common, *FAST, *NO_BAR)
    results["reject"] = decide(second, "reject", "different seed, nothing new for the ensemble", "--reviewer", "Bruno",
                               *NO_BAR)
    results["check"] = run_cli("registry", "check", *common)
    results["show"] = run_cli("registry", "show", "--json", *common)
    return results


def copy_registry(scenario: dict, destination: Path) -> Path:
    """A copy of the scenario's ledger to tamper with, leaving the original intact."""
    return Path(shutil.copytree(scenario["registry"], destination / "registry"))


def proposal_json(result: CliResult) -> dict:
    return json.loads(result.out)
