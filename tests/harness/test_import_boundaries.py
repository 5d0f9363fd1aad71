"""The harness evaluates exported models only: none of its modules loads torch or the training code."""

from tests.test_boundaries import modules_after_import

HARNESS_MODULES = (
    "harness.config", "harness.site_eval", "harness.site_cli", "harness.gates", "harness.ledger",
    "harness.runs", "harness.overview", "harness.registry_cli", "harness.dashboard", "harness.svg",
)


def test_harness_modules_load_no_torch():
    loaded = modules_after_import("import " + ", ".join(HARNESS_MODULES))
    offenders = sorted(m for m in loaded if m.split(".")[0] in ("torch", "lightning", "timm", "train"))
    assert offenders == []


def test_pantanal_parser_loads_no_mlflow():
    # Every `pantanal` call builds the parser, including the field command: it must stay light.
    loaded = modules_after_import("from infer.cli import build_parser; build_parser()")
    heavy = sorted(m for m in loaded if m.split(".")[0] in ("mlflow", "pandas", "matplotlib", "omegaconf"))
    assert heavy == []


def test_registry_commands_are_registered():
    loaded = modules_after_import("from infer.cli import build_parser; build_parser()")
    assert {"harness.site_cli", "harness.registry_cli", "harness.dashboard"} <= loaded
