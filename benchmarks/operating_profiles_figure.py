"""docs/operating_profiles.png: one unit's day under `production` and an hour under `lab`.

    python benchmarks/operating_profiles_figure.py [--out docs/operating_profiles.png]

Rows: commanded setpoint and measured drive current; optical power; temperatures (diode,
heatsink, PSU). Off periods are shaded grey, warm-ups orange; dotted lines mark operating
changes. Each column shows the unit of its run (seed 0, one LCC of 32 units, no faults) with
the most operating changes of its own, so the figure shows what the profile does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from laserguard import sim

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "production": {"hours": 24.0, "rate_hz": 0.1, "title": "production: one unit's day (0.1 Hz)"},
    "lab": {"hours": 1.0, "rate_hz": 1.0, "title": "lab: one unit's hour (1 Hz)"},
}
STATE_SHADES = {"off": "0.85", "warming": "#f5c27a"}


def busiest_unit(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the unit with the most operating changes of its own (ties: lowest index)."""
    own = [c for c in frame.attrs["schedule"] if c["type"] != "ambient_step"]
    counts = pd.Series([c["unit"] for c in own]).value_counts()
    unit = int(counts.sort_index().idxmax()) if len(counts) else 0
    return frame[frame.unit == unit].reset_index(drop=True)


def shade_states(ax: object, t: np.ndarray, states: np.ndarray) -> None:
    for state, colour in STATE_SHADES.items():
        inside = states == state
        edges = np.flatnonzero(np.diff(np.r_[0, inside.astype(int), 0]))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            ax.axvspan(t[start], t[min(stop, len(t) - 1)], color=colour, lw=0, zorder=0)  # type: ignore[attr-defined]


def draw(out: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 9), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 2, sharex="col")
    for col, (profile, run) in enumerate(RUNS.items()):
        frame = sim.generate(
            run["hours"], rate_hz=run["rate_hz"], lccs=1, units=32, seed=0, fault_mix="none", profile=profile
        )
        unit = busiest_unit(frame)
        scale, unit_name = (3600.0, "h") if profile == "production" else (60.0, "min")
        t = unit.time_s.to_numpy() / scale
        states = unit.state.astype(str).to_numpy()
        events = unit[unit.op_event != ""]
        top, mid, bottom = axes[:, col]
        top.plot(t, unit.drive_current_a, color="tab:blue", lw=0.8, label="drive current (measured)")
        top.plot(t, unit.setpoint_a, color="black", lw=1.2, ls="--", label="setpoint (commanded)")
        top.set_ylabel("A")
        mid.plot(t, unit.optical_power_w, color="tab:red", lw=0.8, label="optical power")
        mid.set_ylabel("W")
        bottom.plot(t, unit.diode_temp_c, color="tab:purple", lw=0.8, label="diode (junction)")
        bottom.plot(t, unit.heatsink_temp_c, color="tab:green", lw=0.8, label="heatsink")
        bottom.plot(t, unit.psu_temp_c, color="tab:orange", lw=0.8, label="PSU (follows the rack air)")
        bottom.set_ylabel("°C")
        bottom.set_xlabel(f"time ({unit_name})")
        for ax in (top, mid, bottom):
            shade_states(ax, t, states)
            for when in events.time_s.to_numpy() / scale:
                ax.axvline(when, color="0.4", lw=0.6, ls=":", zorder=1)
            ax.grid(alpha=0.3)
        kinds = ", ".join(f"{k} {n}" for k, n in events.op_event.astype(str).value_counts().items())
        top.set_title(f"{run['title']}, unit {int(unit.unit.iloc[0])}\n{kinds}", fontsize=10)
        if col == 0:
            for ax in (top, mid, bottom):
                ax.legend(loc="lower left", fontsize=8)
    fig.suptitle("Operating profiles (grey: off, orange: warming, dotted: operating change)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "operating_profiles.png")
    args = parser.parse_args()
    draw(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
