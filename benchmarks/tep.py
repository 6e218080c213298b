"""Detection on a plant nobody here wrote: the Tennessee Eastman process (Braatz et al. data).

    python benchmarks/tep.py            # writes the TEP section of docs/benchmarks.md (~1 min)

Protocol (../shared/data/README.md): `d00.dat` (500 normal samples) is the only training data
and the only source of thresholds; each `dNN_te.dat` (960 samples, fault NN from sample 161 on)
is one unit; the false-alarm rate (FAR) is the share of flagged rows 161..960 of the normal run
`d00_te.dat`, the detection rate (DR) the share of flagged rows 161..960 of each fault run; means
leave out faults 3, 9 and 15 (not observable from these channels).

Three detectors, side by side in one run:
- **laserguard (CLI)**: `laserguard train --data` on d00.dat and `laserguard score` on the 22 runs
  as units, as a new user would (each unit learns its baseline from its own first rows).
- **PCA** (31 components, 90 % variance), SPE and T², the reference the data README quotes.
- **Dynamic PCA** (each row stacked with its 2 predecessors, Ku, Storer & Georgakis 1995), SPE
  and T²; and, as a candidate for engine v3, its SPE averaged over the last hour (20 rows).
For the two PCA rows the thresholds come from d00.dat alone: the 99th percentile of the statistic
on *held-out* training rows (5 contiguous folds: fit on four, score the fifth), because a
percentile taken on the rows the model was fitted on is too low on any new data. A second column
gives the DR at limits moved so that d00_te shows exactly 5 % false alarms (uses test data: it
is only there to compare detection power with the data README's reference at equal FAR).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_runner import laserguard
from report_sections import ROOT, machine_line, write_section

TEP = ROOT.parent / "shared" / "data" / "tep"
COMMAND = "python benchmarks/tep.py"
FAULTS = range(1, 22)
UNDETECTABLE = {3, 9, 15}
ONSET = 160  # rows 0..159 are normal in every run; rows 160..959 (samples 161..960) are judged
SAMPLE_S = 180.0  # one sample every 3 min
CHANNELS = [f"xmeas{i}" for i in range(1, 42)] + [f"xmv{i}" for i in range(1, 12)]
VARIANCE_KEPT = 0.90
LAGS = 2
# Candidate for engine v3: DPCA SPE averaged over the last WINDOW rows (1 h). Chosen while
# looking at these test runs (windows 10/15/20, lags 1-5), so its figures are not held out.
WINDOW = 20
TARGET_FAR = 0.01
FOLDS = 5
# The CLI rows, as a new user runs them: `train --data d00 ...` (thresholds from d00.dat only) then
# `score`. Engine v2 (`--context-channels none`); engine v3 with no (the default on any table)
# context channel (each channel against its unit's calibrated level, the residuals judged together
# by PCA SPE); and v3 with the manipulated variables (the controllers' outputs) as context, which
# shows why a plant's own responses make poor context: they move with the loop faults.
V3_CONTEXT = ",".join(f"xmv{i}" for i in range(1, 12))
CLI_ROWS: dict[str, tuple[str, ...]] = {
    "laserguard v2 (CLI)": ("--context-channels", "none"),
    "laserguard v3 (CLI, no context)": ("--context-channels", ""),
    "laserguard v3 (CLI, context xmv1-11)": ("--context-channels", V3_CONTEXT),
}


def load_training() -> np.ndarray:
    return np.loadtxt(TEP / "d00.dat").T  # stored transposed: 52 lines x 500 samples


def load_runs() -> dict[int, np.ndarray]:
    return {n: np.loadtxt(TEP / f"d{n:02d}_te.dat") for n in [0, *FAULTS]}


def lagged(x: np.ndarray, lags: int) -> np.ndarray:
    """Row t holds x[t], x[t-1], ..., x[t-lags]; the first `lags` rows repeat the first sample."""
    padded = np.vstack([np.repeat(x[:1], lags, axis=0), x])
    return np.hstack([padded[lags - k : len(padded) - k] for k in range(lags + 1)])


class PcaMonitor:
    """Standardise, keep the components that explain VARIANCE_KEPT, report SPE and T^2 per row."""

    def __init__(self, train: np.ndarray) -> None:
        self.mean = train.mean(axis=0)
        self.std = train.std(axis=0, ddof=1)
        z = (train - self.mean) / self.std
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        var = s**2 / (len(z) - 1)
        k = int(np.searchsorted(np.cumsum(var) / var.sum(), VARIANCE_KEPT) + 1)
        self.components, self.variances = vt[:k].T, var[:k]

    def statistics(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = (x - self.mean) / self.std
        t = z @ self.components
        residual = z - t @ self.components.T
        return (residual**2).sum(axis=1), (t**2 / self.variances).sum(axis=1)


def trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of each row's statistic and its window - 1 predecessors (fewer at the start)."""
    sums = np.cumsum(np.insert(x, 0, 0.0))
    ends = np.arange(1, len(x) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def held_out_limits(train: np.ndarray, lags: int, window: int = 1) -> tuple[float, float]:
    """(SPE, T^2) limits at 1 - TARGET_FAR from rows each fold's model never saw."""
    spe, t2 = [], []
    for fold in np.array_split(np.arange(len(train)), FOLDS):
        rest = np.setdiff1d(np.arange(len(train)), fold)
        # Lag inside each contiguous piece, so no row is stacked with a neighbour across a cut.
        pieces = [p for p in np.split(rest, np.where(np.diff(rest) > 1)[0] + 1) if len(p) > lags]
        monitor = PcaMonitor(np.vstack([lagged(train[p], lags)[lags:] for p in pieces]))
        s, t = monitor.statistics(lagged(train[fold], lags)[lags:])
        spe.append(trailing_mean(s, window))
        t2.append(trailing_mean(t, window))
    q = 100 * (1 - TARGET_FAR)
    return float(np.percentile(np.concatenate(spe), q)), float(np.percentile(np.concatenate(t2), q))


def pca_rows(
    train: np.ndarray, runs: dict[int, np.ndarray], lags: int, window: int = 1
) -> dict[str, dict[int, np.ndarray]]:
    """Per statistic, per run: the statistic on rows 161..960 over its training-only limit."""
    monitor = PcaMonitor(lagged(train, lags)[lags:])
    spe_limit, t2_limit = held_out_limits(train, lags, window)
    out: dict[str, dict[int, np.ndarray]] = {"SPE": {}, "T2": {}}
    for n, x in runs.items():
        # The test runs are judged from their own start: lags reach back into the normal rows.
        spe, t2 = monitor.statistics(lagged(x, lags))
        out["SPE"][n] = trailing_mean(spe, window)[ONSET:] / spe_limit
        out["T2"][n] = trailing_mean(t2, window)[ONSET:] / t2_limit
    return out


def as_table(x: np.ndarray, unit: str) -> pd.DataFrame:
    frame = pd.DataFrame(x, columns=CHANNELS)
    frame.insert(0, "time_s", np.arange(len(x)) * SAMPLE_S)
    frame.insert(0, "run", unit)
    return frame


def laserguard_flags(
    train: np.ndarray, runs: dict[int, np.ndarray], work: Path, *train_args: str
) -> tuple[dict[int, np.ndarray], str]:
    """`train --data` on d00.dat, `score` on the 22 runs as units: 1 per flagged row 161..960."""
    work.mkdir(parents=True, exist_ok=True)
    as_table(train, "d00").to_csv(work / "train.csv", index=False)
    pd.concat([as_table(x, f"d{n:02d}_te") for n, x in runs.items()]).to_csv(work / "test.csv", index=False)
    trained = laserguard(
        "train", "--data", str(work / "train.csv"), "--unit-column", "run", "--time-column", "time_s",
        "--out", str(work / "model"), *train_args,
    )  # fmt: skip
    laserguard(
        "score", "--model", str(work / "model" / "model.lgf"), "--data", str(work / "test.csv"),
        "--out", str(work / "scored.csv"),
    )  # fmt: skip
    scored = pd.read_csv(work / "scored.csv")
    flags = {
        n: scored.loc[scored["run"] == f"d{n:02d}_te", "is_anomaly"].to_numpy()[ONSET:].astype(float)
        for n in runs
    }
    return flags, trained.splitlines()[-1] if trained else ""


def false_alarms(work: Path) -> str:
    """d00_te's flagged rows 161..960 by explanation kind (a bare channel: the fleet forest) and
    by half of the run (161-560, 561-960: slow plant modes the 25 h of d00.dat do not span)."""
    scored = pd.read_csv(work / "scored.csv", keep_default_na=False)
    normal = scored.loc[scored["run"] == "d00_te"].iloc[ONSET:]
    flagged = normal.loc[normal["is_anomaly"] == 1, "top_feature"].astype(str)
    kinds = flagged.map(lambda f: f.split(":", 1)[1] if ":" in f else "forest").value_counts()
    half = (np.arange(len(normal)) < len(normal) // 2)[normal["is_anomaly"].to_numpy() == 1]
    return (
        f"{len(flagged)} false alarms ("
        + ", ".join(f"{k} {v}" for k, v in kinds.items())
        + f"; {int(half.sum())} in samples 161-560, {int((~half).sum())} in 561-960)"
    )


def shown_args(args: tuple[str, ...]) -> str:
    """The flags as typed in a shell (an empty value as '')."""
    return " ".join(a or "''" for a in args)


def rates(ratio: dict[int, np.ndarray]) -> tuple[float, dict[int, float], dict[int, float]]:
    """FAR and per-fault DR at the training limit (ratio > 1), and DR at limits matched to 5 % FAR."""
    far = float((ratio[0] > 1).mean())
    matched = float(np.percentile(ratio[0], 95))
    at_limit = {n: float((ratio[n] > 1).mean()) for n in FAULTS}
    at_matched = {n: float((ratio[n] > matched).mean()) for n in FAULTS}
    return far, at_limit, at_matched


def mean_detectable(dr: dict[int, float]) -> float:
    return float(np.mean([v for n, v in dr.items() if n not in UNDETECTABLE]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep the CLI rows' tables, models and scores here"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    train, runs = load_training(), load_runs()
    columns: dict[str, tuple[float, dict[int, float], dict[int, float] | None]] = {}
    for name, lags in (("PCA", 0), (f"DPCA (lags {LAGS})", LAGS)):
        stats = pca_rows(train, runs, lags)
        for stat in ("SPE", "T2"):
            columns[f"{name} {stat}"] = rates(stats[stat])
    candidate = pca_rows(train, runs, LAGS, WINDOW)["SPE"]
    columns[f"DPCA SPE, mean of {WINDOW} rows (v3 candidate)"] = rates(candidate)
    trained_lines: dict[str, str] = {}
    alarm_lines: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="laserguard_tep_") as tmp:
        for name, train_args in CLI_ROWS.items():
            work = (args.keep or Path(tmp)) / f"row{len(trained_lines)}"
            flags, trained_lines[name] = laserguard_flags(train, runs, work, *train_args)
            alarm_lines[name] = false_alarms(work)
            columns[name] = (float(flags[0].mean()), {n: float(flags[n].mean()) for n in FAULTS}, None)
    seconds = time.perf_counter() - started

    names = list(columns)
    header = "| fault | " + " | ".join(names) + " |"
    lines = [header, "|" + "---|" * (len(names) + 1)]
    for n in FAULTS:
        cells = []
        for name in names:
            _, at_limit, at_matched = columns[name]
            cell = f"{at_limit[n]:.2f}"
            if at_matched is not None:
                cell += f" ({at_matched[n]:.2f})"
            cells.append(cell)
        mark = " (undetectable)" if n in UNDETECTABLE else ""
        lines.append(f"| {n}{mark} | " + " | ".join(cells) + " |")
    mean_cells, far_cells = [], []
    for name in names:
        far, at_limit, at_matched = columns[name]
        cell = f"**{mean_detectable(at_limit):.3f}**"
        if at_matched is not None:
            cell += f" ({mean_detectable(at_matched):.3f})"
        mean_cells.append(cell)
        far_cells.append(f"{100 * far:.1f} %" + (" (5.0 %)" if at_matched is not None else ""))
    lines.append("| mean DR, 18 detectable | " + " | ".join(mean_cells) + " |")
    lines.append("| FAR on d00_te rows 161-960 | " + " | ".join(far_cells) + " |")
    body = "\n".join(
        [
            "## Tennessee Eastman: a plant nobody here wrote",
            "",
            f"Reproduce: `{COMMAND}` ({seconds:.0f} s; {machine_line()}). Protocol of `../shared/data/README.md`: "
            "d00.dat is the only training data and the only source of thresholds; each `dNN_te.dat` is a unit; "
            "DR = share of rows 161-960 flagged per fault run, FAR = the same on the normal run d00_te. "
            f"PCA/DPCA limits: {100 * (1 - TARGET_FAR):.0f}th percentile of the statistic on held-out d00.dat rows "
            f"({FOLDS} contiguous folds). In brackets: DR with the limit moved so that d00_te shows exactly 5 % false "
            "alarms (uses test data, only to compare detection power at equal FAR with the data README's reference). "
            "laserguard rows: `train --data` (one unit, d00; default --target-fpr 0.001) then `score` on the 22 runs "
            "as units, each run learning its own baseline from its first rows. "
            "v3's threshold: its 450 held-out d00.dat rows cannot resolve the 0.095 % quantile (0.4 rows "
            "beyond it; lag-1 autocorrelation of D 0.84), so it is extrapolated from the exponential tail of "
            "held-out D (`context_fit._threshold`); the held-out rate printed is therefore 0 of 450, not a check. "
            "False alarms are counted by the explanation column, which names the largest single-channel term: "
            "a row the relationship (SPE) stage flags reads `:residual` when one channel's level exceeds every "
            "channel's share of the SPE. "
            f"The v3 candidate's window ({WINDOW} rows) was picked while looking at these runs (windows 10-20, "
            "lags 1-5 gave 0.79-0.89): its figures are not held out. T² drifts on the 48 h normal test run (slow plant "
            "modes the 25 h of d00.dat do not span), so it is not a candidate; SPE, which judges how channels "
            "move together, holds.",
            "",
            *(
                f"- {name}: `train --data d00 {shown_args(CLI_ROWS[name])}` → {line}; on d00_te: "
                f"{alarm_lines[name]}"
                for name, line in trained_lines.items()
            ),
            "",
            *lines,
        ]
    )
    print(body)
    if not args.no_write:
        write_section("tep", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
