"""The paper check (benchmarks/paper_check.py) on two small real datasets, one seed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ODDS_DIR = REPO_ROOT / ".." / "shared" / "data" / "odds"
SMALL_DATASETS = ("breastw", "ionosphere")

pytestmark = pytest.mark.skipif(
    not all((ODDS_DIR / f"{name}.mat").is_file() for name in SMALL_DATASETS),
    reason=f"reference data not found in {ODDS_DIR.resolve()} (../shared/data/odds next to the repo)",
)


def _load_paper_check() -> ModuleType:
    path = REPO_ROOT / "benchmarks" / "paper_check.py"
    sys.path.insert(0, str(path.parent))  # for its sibling report_sections
    spec = importlib.util.spec_from_file_location("paper_check", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


paper_check = _load_paper_check()


@pytest.mark.parametrize("name", SMALL_DATASETS)
def test_cpp_engine_equals_sklearn_and_the_paper(name: str) -> None:
    (dataset,) = paper_check.select_datasets(name)
    result = paper_check.check_dataset(dataset, ODDS_DIR, seeds=[0])
    assert result.max_abs_delta == 0.0
    assert result.ours == result.theirs
    assert result.paper_gap is not None
    assert result.paper_gap <= paper_check.TOLERANCE, (result.ours, dataset.paper_auc)


def test_script_writes_the_table(tmp_path: Path) -> None:
    out = tmp_path / "paper_check.md"
    status = paper_check.main(
        [
            "--data-dir",
            str(ODDS_DIR),
            "--seeds",
            "1",
            "--datasets",
            ",".join(SMALL_DATASETS),
            "--out",
            str(out),
        ]
    )
    assert status == 0
    text = out.read_text(encoding="utf-8")
    assert "python benchmarks/paper_check.py --seeds 1 --datasets breastw,ionosphere" in text
    rows = [line for line in text.splitlines() if line.startswith(("| breastw ", "| ionosphere "))]
    assert len(rows) == 2
    assert all("| bitwise |" in row and "| yes |" in row for row in rows)


def test_unknown_dataset_is_named() -> None:
    with pytest.raises(ValueError, match="nosuchset"):
        paper_check.select_datasets("breastw,nosuchset")
