"""Executes every code cell of each notebook in notebooks/, in order, in one namespace (no
Jupyter kernel needed), with the notebook's directory as the working directory."""
import glob
import json
import os

import pytest

from conftest import REPO_ROOT

NOTEBOOKS = sorted(glob.glob(os.path.join(REPO_ROOT, "notebooks", "*.ipynb")))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, monkeypatch):
    monkeypatch.chdir(os.path.dirname(path))
    monkeypatch.syspath_prepend(REPO_ROOT)
    cells = [c for c in json.load(open(path))["cells"] if c["cell_type"] == "code"]
    assert cells
    ns = {"__name__": "__main__"}
    for i, cell in enumerate(cells):
        src = "".join(cell["source"])
        try:
            exec(compile(src, f"{os.path.basename(path)}[cell {i}]", "exec"), ns)
        except Exception as e:  # name the failing cell
            raise AssertionError(f"{path} cell {i} failed: {e!r}\n{src}") from e


def test_notebooks_exist():
    assert NOTEBOOKS, "notebooks/ has no .ipynb files"
