"""Detection engine v2 on data it was not built for: the ODDS shuttle table (NASA, 49,097 x 9).

    python benchmarks/foreign_table.py        # writes the foreign-data section of docs/benchmarks.md

Checks that `laserguard train --data` and `laserguard score` work on any multichannel sensor
table with its own column names, end to end through the CLI, and reports what they detect.
The shuttle rows (../shared/data/odds/shuttle.mat, y = 1 outlier) are shuffled (seed 0; the file
is not in acquisition order, and in file order the second half's variability differs from the
first's, which the spread feature rightly reports as a change on every stream) and dealt to 8
pseudo-units (row i -> unit i mod 8, time i div 8), written as a CSV with columns
`stream, t, s0..s8, outlier`; `train` sees the first half's inliers, unlabelled; `score` the
whole table in order, each stream's first rows (its inliers of the first half) being its healthy
commissioning period, and the metrics are taken on the second half, outliers included (a
baseline learned on rows with 7 % outliers would make every calm window look "too quiet"). The pseudo-units are not real units (the rows are independent
samples), so this checks the plumbing and the fleet + baseline stages on foreign data, not a
per-unit drift story.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_runner import laserguard
from report_sections import ROOT, machine_line, write_section

DATA = ROOT.parent / "shared" / "data" / "odds" / "shuttle.mat"
COMMAND = "python benchmarks/foreign_table.py"
UNITS = 8
# sigma from 50 rows is too rough for a stream of integers with 8 streams to calibrate on: the
# spread feature then fires on every stream whose baseline happened to be calm (measured: FPR 24 %).
BASELINE_SAMPLES = 500


def shuttle_table() -> pd.DataFrame:
    mat = scipy.io.loadmat(DATA)
    X, y = np.asarray(mat["X"], dtype=np.float64), np.asarray(mat["y"]).ravel().astype(int)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order], y[order]
    frame = pd.DataFrame(X, columns=[f"s{i}" for i in range(X.shape[1])])
    frame.insert(0, "t", np.arange(len(frame)) // UNITS)
    frame.insert(0, "stream", np.arange(len(frame)) % UNITS)
    frame["outlier"] = y
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    frame = shuttle_table()
    half = len(frame) // 2
    train, test = frame.iloc[:half], frame.iloc[half:]
    channels = ",".join(f"s{i}" for i in range(9))
    with tempfile.TemporaryDirectory(prefix="laserguard_foreign_") as tmp:
        work = Path(tmp)
        train[train["outlier"] == 0].drop(columns="outlier").to_csv(work / "train.csv", index=False)
        # Each stream's baseline is learned from its first (healthy) rows, as at commissioning.
        stream = pd.concat([train[train["outlier"] == 0], test])
        stream.to_csv(work / "test.csv", index=False)
        trained = laserguard(
            "train", "--data", str(work / "train.csv"), "--unit-column", "stream", "--time-column", "t",
            "--channels", channels, "--target-fpr", "0.01", "--baseline-samples", str(BASELINE_SAMPLES),
            "--out", str(work / "model"),
        )  # fmt: skip
        scored_line = laserguard(
            "score",
            "--model",
            str(work / "model" / "model.lgf"),
            "--data",
            str(work / "test.csv"),
            "--out",
            str(work / "scored.csv"),
        )
        scored = pd.read_csv(work / "scored.csv")
    assert list(scored["t"]) == list(stream["t"]), "score keeps the input order"
    judged = scored.iloc[len(scored) - len(test) :]
    truth = judged["outlier"].to_numpy() == 1
    flagged = judged["is_anomaly"].to_numpy() == 1
    fpr = float(flagged[~truth].mean())
    # The spread feature looks at the last 30 rows of a stream: an outlier there raises it for the
    # normal rows after it (a smear that is right for a unit drifting, wrong for iid outliers).
    recent = (
        judged.groupby("stream")["outlier"].transform(lambda s: s.rolling(30, min_periods=1).max()).to_numpy()
        == 1
    )
    clean = ~truth & ~recent
    fpr_clean = float(flagged[clean].mean())
    recall = float(flagged[truth].mean())
    auc = float(roc_auc_score(truth, -judged["score"].to_numpy()))
    stage = judged["top_feature"].fillna("").str.contains(":")
    by_baseline = float((flagged & stage.to_numpy())[truth].mean())
    seconds = time.perf_counter() - started
    body = "\n".join(
        [
            "## Beyond our simulator: a table we did not generate (ODDS shuttle)",
            "",
            f"Reproduce: `{COMMAND}` ({seconds:.0f} s; {machine_line()}). The ODDS shuttle table (NASA; "
            f"{len(frame):,} x 9, {int(frame['outlier'].sum()):,} outliers), shuffled and dealt to {UNITS} pseudo-units "
            "(`stream`, time `t`, channels `s0..s8`); `laserguard train --data ... --unit-column stream "
            "--time-column t --target-fpr 0.01 --baseline-samples 500` on the first half's inliers (no labels), "
            "`laserguard score` on the streams in order (first-half inliers, then the second half); metrics on the second half.",
            "",
            f"- train: {trained.splitlines()[-1]}",
            f"- score: {scored_line}",
            f"- second half: FPR {100 * fpr:.2f} % ({100 * fpr_clean:.2f} % on the {int(clean.sum()):,} normal rows "
            "with no outlier among their stream's last 30 rows: the spread window smears an iid outlier "
            f"onto the rows after it), recall {100 * recall:.1f} % "
            f"({100 * by_baseline:.1f} % of outliers flagged by the baseline stage), ROC-AUC of `score` {auc:.3f} "
            "(Liu et al. report 1.00 for an IsolationForest fitted on the whole file). Finding: on "
            "independent samples the rolling-window features are the wrong tool; the engine runs and "
            "ranks, but a user with such data wants the fleet stage alone (not offered as a flag yet).",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("foreign-data", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
