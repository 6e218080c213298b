"""The paper check under pytest-benchmark: one seed per dataset, AUCs kept in extra_info.

    pytest benchmarks/test_paper_check_benchmark.py --benchmark-only

The Markdown table with several seeds comes from `python benchmarks/paper_check.py`.
"""

from __future__ import annotations

from typing import Any

import pytest

import paper_check  # benchmarks/ is on sys.path: pytest prepends a test file's folder

pytestmark = pytest.mark.skipif(
    not paper_check.DEFAULT_DATA_DIR.is_dir(),
    reason=f"reference data not found in {paper_check.DEFAULT_DATA_DIR.resolve()}",
)


@pytest.mark.parametrize("dataset", paper_check.PAPER_DATASETS, ids=lambda d: d.name)
def test_paper_auc(benchmark: Any, dataset: paper_check.PaperDataset) -> None:
    result = benchmark.pedantic(
        paper_check.check_dataset, args=(dataset, paper_check.DEFAULT_DATA_DIR, [0]), rounds=1, iterations=1
    )
    benchmark.extra_info.update(
        {"auc_cpp": result.ours_mean, "auc_sklearn": result.theirs_mean, "paper_auc": dataset.paper_auc}
    )
    assert result.engines_identical
