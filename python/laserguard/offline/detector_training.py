"""Fit detection engine v2 on a table: the fleet forest plus the per-unit baseline stage.

Used by ``laserguard train`` (laser CSVs and any sensor table), ``models/make_default_model.py``
and the benchmarks, so every model is built the same way. The forest is any fitted
``Pipeline(StandardScaler, IsolationForest)``; the baseline stage is fitted on the table's
nominal rows (``offline.baseline_fit``) and both travel in one model file (format 2.0).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from laserguard.model.export import export_model
from laserguard.model.forest import ForestModel
from laserguard.model.unit_scoring import STAGE_BASELINE, STAGE_FLEET, UnitScorer, UnitScores
from laserguard.offline.baseline_fit import DEFAULT_FLEET_SHARE, BaselineFit, fit_baseline
from laserguard.offline.context_fit import ContextFitOptions, fit_context
from laserguard.offline.sensor_table import SensorTable

# The defaults measured in docs/benchmarks.md (detection quality, ageing): a baseline of 50
# rows per unit, a 30-row variability window, the mean following unflagged rows over 24 h.
DEFAULT_BASELINE_SAMPLES: Final[int] = 50
DEFAULT_WINDOW: Final[int] = 30
DEFAULT_MEAN_TAU_S: Final[float] = 24 * 3600.0
# Issue 20's simulator target (FPR <= 0.1 % of healthy unit-rows); the shipped model uses the same.
DEFAULT_TARGET_FPR: Final[float] = 0.001
# Flag a unit once it has deviated for 2 consecutive rows: at 10 Hz that cut the false unit-frames
# on a faulty fleet by 3x for one row (0.1 s) more to detect (docs/benchmarks.md).
DEFAULT_CONFIRM_ROWS: Final[int] = 2
# Channels that follow the load of every unit on their supply: not a unit's own deviation.
SUPPLY_LOAD_CHANNELS: Final[frozenset[str]] = frozenset({"psu_current_a", "psu_temp_c"})
# The supply rail: judged on its level (a sag) but not on its variability, which a neighbour's
# driver fault on the same supply also moves (measured: a third of the false positives).
SUPPLY_RAIL_CHANNELS: Final[frozenset[str]] = frozenset({"psu_voltage_v", "psu_ripple_mv"})
# Detection engine v3 on the laser tables: what a unit does not control (its TEC setpoint moves
# the heatsink and is not on the wire; the supply's load and temperature follow every unit on it).
LASER_CONTEXT_CHANNELS: Final[tuple[str, ...]] = ("heatsink_temp_c", "psu_current_a", "psu_temp_c")


@dataclass(frozen=True)
class BaselineOptions:
    baseline_samples: int = DEFAULT_BASELINE_SAMPLES
    baseline_s: float = 0.0
    window: int = DEFAULT_WINDOW
    mean_tau_s: float = DEFAULT_MEAN_TAU_S
    target_fpr: float = DEFAULT_TARGET_FPR
    fleet_share: float = DEFAULT_FLEET_SHARE
    # Channels shared by several units (a supply rail, a common temperature): judged on their
    # level only. None: the laser schema's supply rails (SUPPLY_RAIL_CHANNELS) by name.
    level_only: tuple[str, ...] | None = None
    confirm_rows: int = DEFAULT_CONFIRM_ROWS

    def __post_init__(self) -> None:
        if (self.baseline_samples > 0) == (self.baseline_s > 0):
            raise ValueError(
                f"give exactly one of baseline_samples ({self.baseline_samples}) and baseline_s ({self.baseline_s})"
            )


def scored_channels(channels: Sequence[str]) -> list[int]:
    """Every channel but the supply-load ones (for a non-laser table: every channel)."""
    scored = [i for i, c in enumerate(channels) if c not in SUPPLY_LOAD_CHANNELS]
    return scored or list(range(len(channels)))


def spread_judged(
    channels: Sequence[str], scored: Sequence[int], level_only: Sequence[str] | None = None
) -> tuple[int, ...]:
    """Per scored channel 1 (level and spread) or 0 (level only: a supply rail, or as the user says)."""
    unknown = sorted(set(level_only or ()) - set(channels))
    if unknown:
        raise ValueError(f"level-only channel(s) {unknown} are not model channels {list(channels)}")
    shared = SUPPLY_RAIL_CHANNELS if level_only is None else frozenset(level_only)
    return tuple(0 if channels[c] in shared else 1 for c in scored)


def fit_baseline_on_table(
    forest: ForestModel,
    table: SensorTable,
    nominal: npt.NDArray[np.bool_],
    options: BaselineOptions,
    fleet_decision: npt.NDArray[np.float64] | None = None,
) -> BaselineFit:
    """The baseline stage on the table's nominal rows (processing order), thresholds shared with the forest.

    ``fleet_decision``: the forest's decision for each nominal row from forests that never saw it
    (``training_split.out_of_fold_fleet_decisions``); default: this forest's own (in-sample)."""
    rows = np.flatnonzero(nominal)
    values = table.values[rows]
    if fleet_decision is not None and len(fleet_decision) != len(rows):
        raise ValueError(f"fleet_decision has {len(fleet_decision)} values for {len(rows)} nominal rows")
    scored = scored_channels(table.channels)
    return fit_baseline(
        table.unit[rows],
        table.time_s[rows],
        values,
        n_units=table.n_units,
        scored=scored,
        judge_spread=spread_judged(table.channels, scored, options.level_only),
        baseline_samples=options.baseline_samples,
        baseline_s=options.baseline_s,
        window=options.window,
        mean_tau_s=options.mean_tau_s,
        target_fpr=options.target_fpr,
        fleet_decision=forest.decision_function(values) if fleet_decision is None else fleet_decision,
        fleet_share=options.fleet_share,
        confirm_rows=options.confirm_rows,
    )


@dataclass(frozen=True)
class ContextSpec:
    """Detection engine v3: the context stage (offline.context_fit) instead of v2's raw level/spread.

    ``channels``: the context channels by name (what the unit does not control: for the laser
    tables LASER_CONTEXT_CHANNELS); the table's ``setpoint_a``/``state`` columns, when it has them,
    are context too. Every other channel is judged by its residual."""

    channels: tuple[str, ...] = ()
    options: ContextFitOptions = field(default_factory=ContextFitOptions)

    def indices(self, table_channels: Sequence[str]) -> list[int]:
        unknown = [c for c in self.channels if c not in table_channels]
        if unknown:
            raise ValueError(
                f"context channel(s) {unknown} are not channels of the table {list(table_channels)}"
            )
        return [table_channels.index(c) for c in self.channels]


# The laser tables' context as the shipped default uses it, for `train --data-dir` and
# models/make_default_model.py alike. Per-channel context selection (context_min_gain 0.1): with
# every context channel on every channel a production day flagged 21.4 % of healthy rows (the
# supply's load extrapolated into the units' optical channels) against 0.10 % with selection;
# selection costs the `lab` profile (2.7 % vs 0.41 %). docs/detection.md has the measurements.
LASER_CONTEXT: Final = ContextSpec(LASER_CONTEXT_CHANNELS, ContextFitOptions(context_min_gain=0.1))


def export_detector(
    pipeline: Any,
    path: str | os.PathLike[str],
    table: SensorTable,
    nominal: npt.NDArray[np.bool_],
    options: BaselineOptions,
    *,
    training_data_sha256: str | None = None,
    extra_metadata: dict[str, Any] | None = None,
    workdir: str | os.PathLike[str],
    fleet_decision: npt.NDArray[np.float64] | None = None,
    context: ContextSpec | None = None,
) -> tuple[str, BaselineFit]:
    """Export the forest, fit the baseline stage against it, export both (format 2.0); with
    ``context``, fit the v3 context stage on the same rows and export all three (format 2.2).

    The baseline fit gives what v3 keeps of it (learning period, rules, fleet cut); the context
    fit replaces its threshold with one for the context stage and the rules, and the returned fit
    then describes what ships (v3 threshold, FPR on the rows the context fit held out)."""
    forest_only = os.path.join(os.fspath(workdir), "forest.lgf")
    export_model(pipeline, forest_only, feature_names=table.channels)
    fit = fit_baseline_on_table(ForestModel.load(forest_only), table, nominal, options, fleet_decision)
    metadata = {**(extra_metadata or {}), "baseline_fit": {**fit.report(), "options": vars(options)}}
    baseline, context_params = fit.params, None
    if context is not None:
        rows = np.flatnonzero(nominal)
        cfit = fit_context(
            table.unit[rows],
            table.time_s[rows],
            table.values[rows],
            baseline=fit.params,
            context_channels=context.indices(list(table.channels)),
            setpoint=None if table.setpoint is None else table.setpoint[rows],
            state=None if table.state is None else table.state[rows],
            target_fpr=options.target_fpr,
            options=context.options,
            channel_names=table.channels,
        )
        baseline, context_params = cfit.baseline, cfit.params
        # What ships: the v3 threshold, and its FPR on the rows the context fit held out.
        fit = replace(
            fit,
            params=cfit.baseline,
            nominal_rows=cfit.held_out_rows,
            nominal_fpr=cfit.held_out_fpr,
            baseline_flagged=cfit.flagged_by.get("context", 0),
            missing_flagged=cfit.flagged_by.get("rules", 0),
            threshold_from=cfit.threshold_from,
        )
        metadata["context_fit"] = {
            **cfit.report(),
            "context_channels": list(context.channels),
            "options": asdict(context.options),
        }
    version = export_model(
        pipeline,
        path,
        feature_names=table.channels,
        training_data_sha256=training_data_sha256,
        extra_metadata=metadata,
        baseline=baseline,
        context=context_params,
    )
    return version, fit


def score_table(model: ForestModel, table: SensorTable, top_k: int = 1) -> UnitScores:
    """Every row of the table through the v2 scorer, in processing order (one C++ stage for all units)."""
    return UnitScorer(model, table.n_units).score(
        table.unit, table.time_s, table.values, top_k, setpoint=table.setpoint, state=table.state
    )


def stage_recall(scores: UnitScores, label: npt.NDArray[np.bool_]) -> dict[str, float | None]:
    """Of the labelled rows scored after learning: the share flagged, and flagged by each stage."""
    judged = label & ~scores.learning
    n = int(judged.sum())
    if n == 0:
        return {"any": None, "fleet": None, "baseline": None}
    return {
        "any": float(scores.flagged[judged].mean()),
        "fleet": float((scores.stage[judged] == STAGE_FLEET).mean()),
        "baseline": float((scores.stage[judged] == STAGE_BASELINE).mean()),
    }
