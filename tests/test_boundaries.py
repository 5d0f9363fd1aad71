"""Dependency direction: infer imports no torch, harness no torch or train (ARCHITECTURE contract)."""

import subprocess
import sys

from tests.conftest import PROJECT_ROOT

HEAVY = ("torch", "lightning", "hydra", "mlflow", "timm", "train", "harness")


def modules_after_import(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_import_infer_loads_no_torch():
    loaded = modules_after_import(
        "import infer, infer.cli, infer.command, infer.pipeline, infer.teacher, infer.loading"
    )
    offenders = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert offenders == []


def test_pantanal_infer_help_loads_no_torch():
    loaded = modules_after_import("from infer.cli import build_parser; build_parser()")
    assert "torch" not in loaded
    assert "lightning" not in loaded


def test_harness_loads_no_torch():
    loaded = modules_after_import("import harness.metrics, harness.dataset, harness.manifests, harness.registry")
    offenders = sorted(m for m in loaded if m.split(".")[0] in ("torch", "lightning", "timm", "train"))
    assert offenders == []


def test_import_linter_contracts_hold():
    result = subprocess.run([str(PROJECT_ROOT / ".venv" / "bin" / "lint-imports")], cwd=PROJECT_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
