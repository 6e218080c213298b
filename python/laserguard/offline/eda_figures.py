"""Exploratory figures of the clean data as PNG (matplotlib Agg canvas, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from laserguard.offline.training_data import FEATURE_COLUMNS

# Large datasets are sampled (deterministically) for the distribution and correlation figures.
MAX_PLOTTED_ROWS: Final = 200_000
TIMESERIES_CHANNELS: Final = ("optical_power_w", "drive_current_a", "diode_temp_c", "psu_voltage_v")
# Plotted under the channels, so a step in a reading can be matched to a change of setpoint.
TIMESERIES_CONTEXT: Final = ("setpoint_a",)


def _sample(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.sample(n=MAX_PLOTTED_ROWS, random_state=0) if len(rows) > MAX_PLOTTED_ROWS else rows


def distributions_by_unit(rows: pd.DataFrame, path: Path) -> Path:
    """One box plot per channel, one box per unit (normal rows and fault rows together)."""
    from matplotlib.figure import Figure

    data = _sample(rows)
    keys = data["lcc"].astype(str) + ":" + data["unit"].astype(str)
    names = sorted(keys.unique(), key=lambda k: tuple(int(x) for x in k.split(":")))
    fig = Figure(figsize=(16, 12), dpi=80)
    for i, channel in enumerate(FEATURE_COLUMNS):
        ax = fig.add_subplot(4, 3, i + 1)
        groups = [data.loc[keys == name, channel].dropna().to_numpy() for name in names]
        ax.boxplot(groups, showfliers=False)
        ax.set_title(channel, fontsize=9)
        ax.set_xticks(range(1, len(names) + 1), names if len(names) <= 16 else [""] * len(names), fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle("per-channel distribution by unit (lcc:unit; whiskers 1.5 IQR, outliers hidden)")
    fig.tight_layout()
    fig.savefig(path)
    return path


def correlation_matrix(rows: pd.DataFrame, path: Path) -> Path:
    """Pearson correlation of the 11 channels over the normal rows (label 0)."""
    from matplotlib.figure import Figure

    normal = _sample(rows[rows["label"] == 0])
    corr = normal[list(FEATURE_COLUMNS)].corr().to_numpy()
    fig = Figure(figsize=(9, 8), dpi=80)
    ax = fig.add_subplot()
    image = ax.imshow(np.nan_to_num(corr), vmin=-1.0, vmax=1.0, cmap="coolwarm")
    ticks = range(len(FEATURE_COLUMNS))
    ax.set_xticks(ticks, FEATURE_COLUMNS, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(ticks, FEATURE_COLUMNS, fontsize=8)
    for i in ticks:
        for j in ticks:
            ax.text(
                j,
                i,
                "" if np.isnan(corr[i, j]) else f"{corr[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=6,
            )
    fig.colorbar(image, ax=ax)
    ax.set_title(f"channel correlation, normal rows (n={len(normal)})")
    fig.tight_layout()
    fig.savefig(path)
    return path


def unit_timeseries(rows: pd.DataFrame, path: Path, n_units: int = 4) -> Path:
    """A few units (those with the most fault samples) over time, fault samples shaded, with
    their setpoint (a row without data when the setpoint is unknown)."""
    from matplotlib.figure import Figure

    faults = rows.groupby(["lcc", "unit"])["label"].sum().sort_values(ascending=False, kind="stable")
    chosen = list(faults.index[:n_units])
    t0 = rows["time"].min()
    plotted = TIMESERIES_CHANNELS + tuple(c for c in TIMESERIES_CONTEXT if c in rows.columns)
    fig = Figure(figsize=(14, 3 * len(plotted)), dpi=80)
    axes = [fig.add_subplot(len(plotted), 1, i + 1) for i in range(len(plotted))]
    for lcc, unit in chosen:
        series = rows[(rows["lcc"] == lcc) & (rows["unit"] == unit)].sort_values("time")
        hours = (series["time"] - t0).dt.total_seconds().to_numpy() / 3600.0
        anomalous = series["label"].to_numpy() == 1
        kinds = sorted(set(series.loc[series["label"] == 1, "fault_type"].astype(str)))
        for ax, channel in zip(axes, plotted, strict=True):
            step = "steps-post" if channel in TIMESERIES_CONTEXT else "default"
            line = ax.plot(
                hours,
                series[channel].to_numpy(dtype=float),
                linewidth=0.7,
                drawstyle=step,
                label=f"{lcc}:{unit} {kinds}",
            )
            ax.fill_between(
                hours,
                0,
                1,
                where=anomalous,
                color=line[0].get_color(),
                alpha=0.12,
                transform=ax.get_xaxis_transform(),
                linewidth=0,
            )
    for ax, channel in zip(axes, plotted, strict=True):
        ax.set_ylabel(channel, fontsize=8)
    axes[0].legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel("hours since the first sample (shaded: labelled fault)")
    fig.suptitle("units with the most fault samples (lcc:unit [fault types])")
    fig.tight_layout()
    fig.savefig(path)
    return path


def write_eda_figures(rows: pd.DataFrame, out_dir: Path) -> list[Path]:
    """All EDA figures for ``rows`` (clean rows with a datetime ``time`` column)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        distributions_by_unit(rows, out_dir / "channel_distributions_by_unit.png"),
        correlation_matrix(rows, out_dir / "correlation_matrix.png"),
        unit_timeseries(rows, out_dir / "unit_timeseries_faults.png"),
    ]
