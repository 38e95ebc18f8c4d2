"""The notebooks run end to end (small settings) and are committed with outputs.

The default suite runs every code cell of each notebook, in order, in this process
(small settings, figures to the Agg backend): what a notebook calls still exists and
runs. Starting a Jupyter kernel for each notebook, which imports torch and matplotlib
again, is ``-m slow`` (``test_notebook_executes_in_a_kernel_with_small_settings``).
"""

import warnings
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: Per-cell limit; the small settings take seconds, this only stops a hang.
CELL_TIMEOUT_S = 300


def test_both_notebooks_exist():
    assert {p.name for p in NOTEBOOKS} == {"theory_walkthrough.ipynb", "toy_sphere_regimes.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code), "re-execute and commit"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert any(o.get("data", {}).get("image/png") for c in code for o in c.outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_cells_run_in_order_with_small_settings(path, tmp_path, monkeypatch):
    import matplotlib
    import matplotlib.pyplot as plt

    monkeypatch.setenv("MANIFOLD_LAB_NOTEBOOK_SMALL", "1")  # the notebooks read it in their first cell
    monkeypatch.chdir(tmp_path)
    previous = matplotlib.get_backend()
    plt.switch_backend("Agg")
    nb = nbformat.read(path, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    # Plain Python only: a magic or shell escape would need the kernel (and the slow test).
    assert not [line for src in cells for line in src.splitlines() if line.lstrip().startswith(("%", "!"))]
    namespace = {"__name__": "__main__"}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*non-interactive.*")  # plt.show() under Agg
            for i, source in enumerate(cells):
                exec(compile(source, f"{path.name}, code cell {i}", "exec"), namespace)  # noqa: S102
    finally:
        plt.close("all")
        plt.switch_backend(previous)
    assert namespace["SMALL"] is True


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_in_a_kernel_with_small_settings(path, tmp_path, monkeypatch):
    # The kernel inherits this environment; the notebooks read it in their first cell.
    monkeypatch.setenv("MANIFOLD_LAB_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError with the failing cell's traceback
