"""What an idle 100 ms costs one frame: `detect`'s native call with and without a pause.

    python benchmarks/cold_frame.py            # prints the table and writes the "cold" section

One process, the shipped default model, one 32-unit frame scored exactly as `detect` does
(`live.detector.score_frame`: one C++ call). Each row changes one thing before the timed call,
so the rows separate the candidate causes of the 10 Hz slowdown:

- pause of 0, 1, 10 or 100 ms (sleeping, as detect's poll does);
- no pause, but 64 MiB streamed first (evicts the caches while the core stays busy);
- a 100 ms pause, then 3 ms of spinning that touches no memory (wakes the core, clocks up);
- a 100 ms pause, then the same frame scored once untimed (re-fills the caches);
- what `detect` does by default: a dry run of the frame (`score_frame(..., dry_run=True)`,
  nothing kept) 1-2 ms before it is due.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from laserguard.live.baseline_store import LiveBaselines
from laserguard.live.detector import score_frame
from laserguard.model.default_model import default_model_path
from laserguard.model.forest import ForestModel
from laserguard.wire import codec
from report_sections import machine_line, write_section

EVICT = np.zeros(8 << 20)  # 64 MiB


def frame_payload(seq: int, n_features: int) -> bytes:
    rng = np.random.default_rng(seq)
    values = (rng.normal(size=(32, n_features)) * 0.01 + 1.0).astype(np.float32)
    return codec.encode_telemetry(1, seq, time.time_ns(), values, boot_id=7)


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def measure(
    before: Callable[[], None], baselines: LiveBaselines, payload: bytes, repeats: int
) -> list[float]:
    times = []
    for _ in range(repeats):
        before()
        start = time.perf_counter()
        score_frame(baselines, payload)
        times.append((time.perf_counter() - start) * 1e6)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    model = ForestModel.load(default_model_path())
    baselines = LiveBaselines(model, None)
    payload = frame_payload(1, len(codec.CHANNELS))
    for _ in range(200):  # past the baseline's learning rows: the steady state detect runs in
        score_frame(baselines, payload)

    def pause(ms: float) -> Callable[[], None]:
        return lambda: time.sleep(ms / 1000)

    def evict() -> None:
        np.add(EVICT, 1.0, out=EVICT)

    def pause_then_spin() -> None:
        time.sleep(0.1)
        spin(0.003)

    def pause_then_warm() -> None:
        time.sleep(0.1)
        score_frame(baselines, payload)

    def pause_then_warm_up(
        lead_s: float,
    ) -> Callable[[], None]:  # what detect does (live/arrival_forecast.py)
        def before() -> None:
            time.sleep(0.1 - lead_s)
            score_frame(baselines, payload, dry_run=True)
            time.sleep(lead_s)

        return before

    rows = [
        ("back to back", pause(0)),
        ("1 ms pause", pause(1)),
        ("10 ms pause", pause(10)),
        ("100 ms pause (10 Hz)", pause(100)),
        ("no pause, 64 MiB streamed first", evict),
        ("100 ms pause, then 3 ms spin (no memory)", pause_then_spin),
        ("100 ms pause, then the frame once untimed", pause_then_warm),
        ("98 ms pause, a dry run of the frame, 2 ms pause", pause_then_warm_up(0.002)),
        ("99 ms pause, a dry run of the frame, 1 ms pause", pause_then_warm_up(0.001)),
    ]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {machine_line()} with `python benchmarks/cold_frame.py`: "
        f"one 32-unit frame through `detect`'s native call (shipped model, {model.n_trees} trees, "
        f"forest kernel {model.kernel}), {args.repeats} times per row.",
        "",
        "| before the timed call | p50 µs | p90 µs |",
        "|---|---:|---:|",
    ]
    for name, before in rows:
        times = measure(before, baselines, payload, args.repeats)
        p50 = statistics.median(times)
        p90 = statistics.quantiles(times, n=10)[-1]
        lines.append(f"| {name} | {p50:.0f} | {p90:.0f} |")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("cold", body)


if __name__ == "__main__":
    main()
