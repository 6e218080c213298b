"""Run the engine benchmarks and write their table into docs/benchmarks.md.

    python benchmarks/engine_report.py            # all engines that are installed
    python benchmarks/engine_report.py --json bench.json   # reuse an earlier run

The table goes between the `<!-- engines:begin -->` / `<!-- engines:end -->` markers so
other sections of docs/benchmarks.md are left alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from report_sections import ROOT, machine_line, write_section

ENGINE_ORDER = [
    "laserguard",
    "laserguard, kernel portable",
    "laserguard, kernel avx512_gather",
    "laserguard, kernel avx512_blend",
    "laserguard (libm pow)",
    "sklearn",
    "onnxruntime",
    "treelite GTIL",
    "tl2cgen",
]


def run_benchmarks(json_path: str) -> None:
    cmd = [
        sys.executable, "-m", "pytest", "-q", str(ROOT / "benchmarks" / "test_bench_engines.py"),
        f"--benchmark-json={json_path}", "--benchmark-min-rounds=200", "--benchmark-warmup=on",
    ]  # fmt: skip
    # Failures are listed by pytest; the table is still written from what was measured.
    subprocess.run(cmd, check=False, cwd=ROOT)


def render(data: dict) -> str:  # type: ignore[type-arg]
    by_scenario: dict[str, dict[str, dict]] = defaultdict(dict)  # type: ignore[type-arg]
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        by_scenario[f"{info['config']} | {info['batch']}"][info["engine"]] = {**info, **bench["stats"]}
    lines = [
        f"Measured {data['datetime'][:10]} on {machine_line()}, one thread per engine. Medians in microseconds per call (input: float64 array, "
        "output: decision_function). Ratio = engine median / laserguard median; *laserguard* is the "
        "kernel its load-time calibration chose on this CPU, the *kernel* rows force each one. "
        "Parity = max |decision - sklearn decision| (bitwise-identical fraction).",
        "",
        "| scenario | engine | median (µs) | IQR (µs) | ratio vs laserguard | parity max abs Δ (bitwise) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for scenario, engines in by_scenario.items():
        base = engines.get("laserguard", {}).get("median")
        for engine in sorted(engines, key=lambda e: ENGINE_ORDER.index(e) if e in ENGINE_ORDER else 99):
            s = engines[engine]
            ratio = f"{s['median'] / base:.1f}x" if base else "—"
            parity = (
                f"{s['max_abs_delta']:.1e} ({s['bitwise_fraction']:.1%})" if "max_abs_delta" in s else "n/a"
            )
            median, iqr = s["median"] * 1e6, s["iqr"] * 1e6
            label = f"{engine} (calibrated: {s['kernel']})" if s.get("kernel") else engine
            lines.append(f"| {scenario} | {label} | {median:,.1f} | {iqr:,.1f} | {ratio} | {parity} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", help="use this pytest-benchmark JSON instead of running the benchmarks")
    args = parser.parse_args()
    json_path = args.json
    if json_path is None:
        json_path = os.path.join(tempfile.mkdtemp(), "bench.json")
        run_benchmarks(json_path)
    table = render(json.loads(Path(json_path).read_text()))
    write_section("engines", table)
    print(table)


if __name__ == "__main__":
    main()
