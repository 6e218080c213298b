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
import platform
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- engines:begin -->", "<!-- engines:end -->"
ENGINE_ORDER = ["laserguard", "laserguard (C++ pow)", "sklearn", "onnxruntime", "treelite GTIL", "tl2cgen"]


def run_benchmarks(json_path: str) -> None:
    cmd = [
        sys.executable, "-m", "pytest", "-q", str(ROOT / "benchmarks" / "test_bench_engines.py"),
        f"--benchmark-json={json_path}", "--benchmark-min-rounds=200", "--benchmark-warmup=on",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=ROOT)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def render(data: dict) -> str:  # type: ignore[type-arg]
    by_scenario: dict[str, dict[str, dict]] = defaultdict(dict)  # type: ignore[type-arg]
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        by_scenario[f"{info['config']} | {info['batch']}"][info["engine"]] = {**info, **bench["stats"]}
    lines = [
        f"Measured {data['datetime'][:10]} on {cpu_name()} ({os.cpu_count()} cores), one thread per engine, "
        f"Python {platform.python_version()}. Medians in microseconds per call (input: float64 array, "
        "output: decision_function). Ratio = engine median / laserguard median. "
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
            lines.append(f"| {scenario} | {engine} | {median:,.1f} | {iqr:,.1f} | {ratio} | {parity} |")
    return "\n".join(lines)


def write_section(table: str) -> None:
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)


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
    write_section(table)
    print(table)


if __name__ == "__main__":
    main()
