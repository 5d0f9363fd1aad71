"""notebooks/review_harness.ipynb runs top to bottom on a real harness report."""

import json
import sys

import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT
from tests.harness.conftest import FAST, run_cli

pytestmark = pytest.mark.slow

NOTEBOOK = PROJECT_ROOT / "notebooks" / "review_harness.ipynb"


def write_kernelspec(folder, env: dict[str, str]) -> str:
    """A kernelspec that runs this interpreter with `src` importable; returns its name."""
    spec = folder / "kernels" / "pantanal-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "pantanal (tests)",
        "language": "python",
        "env": env,
    }))
    return "pantanal-test"


def test_notebook_plots_per_class_auc(tiny_pipeline, tmp_path, monkeypatch):
    report = tmp_path / "report.json"
    result = run_cli("harness", "--model", tiny_pipeline["model"], "--no-log", "--out", report, *FAST)
    assert result.code == 0, result.err

    name = write_kernelspec(tmp_path / "jupyter", {
        "PYTHONPATH": str(PROJECT_ROOT / "src"),
        "PANTANAL_HARNESS_REPORT": str(report),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    })
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # IPC transport: the kernel talks over files in tmp_path, not over TCP ports.
    manager = KernelManager(kernel_name=name, transport="ipc", ip=str(tmp_path / "kernel"))
    NotebookClient(notebook, km=manager, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"report: {report}" in text
    assert "12/12 labelled windows" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2


def test_notebook_has_a_parameters_cell():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "PANTANAL_HARNESS_REPORT" in tagged[0].source
