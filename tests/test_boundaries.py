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


FIELD_INSTALL = """
import sys
from importlib.abc import MetaPathFinder

class ResearchLibrariesAbsent(MetaPathFinder):
    # Stands in for a field install: the `train` extra's libraries are not there.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"pandas", "omegaconf", "hydra", "mlflow", "torch", "lightning", "sklearn"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, ResearchLibrariesAbsent())
from infer.cli import main
sys.exit(main(["registry", "show"]))
"""


def test_field_install_research_command_names_extra():
    result = subprocess.run([sys.executable, "-c", FIELD_INSTALL], capture_output=True, text=True,
                            cwd=PROJECT_ROOT)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "'pantanal registry' needs the research install" in result.stderr
    assert "pip install 'pantanal[train]'" in result.stderr
