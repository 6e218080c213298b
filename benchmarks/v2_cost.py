"""What detection engines v2 and v3 cost per 64-unit frame, next to the forest alone, in one run.

    python benchmarks/v2_cost.py     # writes the v2-cost section of docs/benchmarks.md

Two models fitted the way models/make_default_model.py fits the shipped one (200 trees, psi 256,
11 channels, the same `lab` training data): v2 (fleet forest + per-unit baseline) and v3 (the same
plus the context stage, model format 2.1; the shipped default). 2 LCCs x 32 units of simulated
telemetry under `lab` (default fault mix, so some units are flagged and explained, each frame with
its units' setpoints and states), units past their baseline. Medians over 3,000 frames, one
thread, back to back (caches warm). Targets: v2 <= 1.25x the forest alone; v3 <= 1.5x v2 (issue 20).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from laserguard import ForestModel, sim
from laserguard.codec import state_codes
from laserguard.model.unit_scoring import UnitScorer
from laserguard.offline.detector_training import export_detector
from laserguard.offline.sensor_table import sensor_table
from laserguard.wire.codec import CHANNELS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_sections import ROOT, machine_line, write_section

COMMAND = "python benchmarks/v2_cost.py"
FRAMES = 3000


def median_us(fn: Callable[[int], object], n: int = FRAMES) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e6)


def models(v3_path: Path) -> tuple[ForestModel, ForestModel]:
    """(v3, v2): the shipped default and a v2 model fitted on the same data with the same forest."""
    v3 = ForestModel.load(v3_path)
    sys.path.insert(0, str(ROOT / "models"))
    import make_default_model as default

    frame = sim.generate(
        default.DATA["hours"],
        rate_hz=default.DATA["rate_hz"],
        seed=default.DATA["seed"],
        fault_mix="none",
        profile=default.DATA["profile"],
    )
    X = frame[list(CHANNELS)].to_numpy(np.float64)
    pipeline = Pipeline([("scaler", StandardScaler()), ("model", IsolationForest(**default.PARAMS))]).fit(X)
    table = sensor_table(frame, unit_columns=["lcc", "unit"], time_column="time_s", channels=CHANNELS)
    with tempfile.TemporaryDirectory(prefix="laserguard_cost_") as tmp:
        path = Path(tmp) / "v2.lgf"
        export_detector(pipeline, path, table, np.ones(len(X), dtype=bool), default.OPTIONS, workdir=tmp)
        v2 = ForestModel.load(path)
    return v3, v2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "default.lgf", help="the v3 model")
    args = parser.parse_args(argv)
    v3_model, v2_model = models(args.model)
    table = sim.generate(400 / 3600, rate_hz=1.0, lccs=2, seed=3, fault_mix="default", profile="lab")
    frames = table[list(CHANNELS)].to_numpy(np.float32).reshape(-1, 64, len(CHANNELS))
    setpoints = table["setpoint_a"].to_numpy(np.float32).reshape(-1, 64)
    states = np.asarray(state_codes(table["state"].to_numpy(), len(table)), dtype=np.uint8).reshape(-1, 64)
    units = np.arange(64, dtype=np.uint32)
    timings: dict[str, tuple[float, float, float]] = {}
    live, live_sp, live_st = frames[60:], setpoints[60:], states[60:]
    n = len(live)
    for name, model in (("v2", v2_model), ("v3", v3_model)):
        scorer = UnitScorer(model, 64)
        for i in range(60):  # past the 50-row baselines
            scorer.score(units, np.full(64, float(i)), frames[i], setpoint=setpoints[i], state=states[i])
        flagged = float(
            np.mean(
                [
                    scorer.score(
                        units, np.full(64, 60.0 + i), live[i], setpoint=live_sp[i], state=live_st[i]
                    ).flagged.sum()
                    for i in range(50)
                ]
            )
        )
        assert scorer.stage is not None
        stage = scorer.stage
        total = median_us(
            lambda i, s=scorer: s.score(
                units, np.full(64, 1e4 + i), live[i % n], 3, setpoint=live_sp[i % n], state=live_st[i % n]
            )
        )
        stage_only = median_us(
            lambda i, st=stage: st.push(
                units, np.full(64, 1e6 + i), live[i % n], 3, setpoint=live_sp[i % n], state=live_st[i % n]
            )
        )
        timings[name] = (total, stage_only, flagged)
    forest = median_us(lambda i: v2_model.decision_function(frames[60 + i % (len(frames) - 60)]))
    v2, v2_stage, v2_flagged = timings["v2"]
    v3, v3_stage, v3_flagged = timings["v3"]
    body = "\n".join(
        [
            "## Cost of detection engines v2 and v3 per frame (targets: v2 ≤ 1.25x the forest alone, v3 ≤ 1.5x v2)",
            "",
            f"Reproduce: `{COMMAND}` ({machine_line()}). Two models fitted like the shipped default (200 trees, "
            "ψ 256, the same `lab` training data): v2 and v3 (the shipped default, with the context stage); a 64 x 11 "
            "float32 frame under `lab` with each unit's setpoint and state, units past their baseline, "
            f"{v2_flagged:.1f} (v2) and {v3_flagged:.1f} (v3) units flagged per frame on average; medians of "
            f"{FRAMES:,} frames back to back, one thread, in one run.",
            "",
            "| per frame | µs | vs forest alone | vs v2 |",
            "|---|---|---|---|",
            f"| forest alone (`ForestModel.decision_function`, exact) | {forest:.1f} | 1.00x | |",
            f"| v2: forest + baseline stage + explanation of flagged units (`UnitScorer.score`) | {v2:.1f} | {v2 / forest:.2f}x | 1.00x |",
            f"| of which the C++ per-unit stage call (`BaselineStage.push`, 64 units) | {v2_stage:.1f} | {v2_stage / forest:.2f}x | |",
            f"| v3: forest + context stage + rules + explanation (`UnitScorer.score`) | {v3:.1f} | {v3 / forest:.2f}x | {v3 / v2:.2f}x |",
            f"| of which the C++ per-unit stage call with the context stage | {v3_stage:.1f} | {v3_stage / forest:.2f}x | |",
            "",
            f"v2 target **{'met' if v2 / forest <= 1.25 else 'not met'}**, v3 target **"
            f"{'met' if v3 / v2 <= 1.5 else 'not met'}** in this run. Every stage, the combined score and the "
            "explanations are one native call (`_core.UnitScorer.score`, GIL released) that finishes the forest "
            "with numpy's own float64 power loop (bit for bit, `laserguard.model.numpy_power`).",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("v2-cost", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
