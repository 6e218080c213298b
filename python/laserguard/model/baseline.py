"""The per-unit baseline stage of detection engine v2 (C++ ``BaselineStage``).

Every unit is judged against its own baseline, learned from its first rows and then frozen:
per scored channel the level ``|z| = |x - mu| / sigma`` and the spread ``|ln s|`` (``s`` the
rolling std over ``window`` rows / sigma), each divided by a scale fitted on nominal data;
their maximum ``D`` over channels gives the stage's decision ``1 - D / threshold`` (< 0 flags).
Two rules flag regardless of degree: a non-finite reading in the window (dropout) and a
channel repeating the same reading ``stuck_run`` times (a frozen sensor). The parameters travel in the model
file (format 2.0, docs/model-format.md); the definitions are in
cpp/include/laserguard/features/baseline_stage.hpp and docs/detection.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from laserguard import _core

if TYPE_CHECKING:
    from laserguard.model.context import ContextParams

# code = channel * 7 + kind: level, spread (v2), missing, stuck (rules), residual,
# residual_spread, relationship (v3's context stage).
DEVIATION_KINDS: Final[tuple[str, ...]] = tuple(_core.DEVIATION_KINDS)


@dataclass(frozen=True)
class BaselineParams:
    """What a model file v2 carries for the baseline stage (validated by the C++ core)."""

    n_channels: int
    sigma_floor: tuple[float, ...]
    stuck_run: tuple[int, ...]
    scored: tuple[int, ...]
    level_scale: tuple[float, ...]
    spread_scale: tuple[float, ...]
    judge_spread: tuple[int, ...] = ()  # per scored channel 1/0; empty: every scored channel
    baseline_samples: int = 0
    baseline_s: float = 0.0
    window: int = 30
    missing_flags: bool = True
    mean_tau_s: float = 0.0
    threshold: float = 1.0
    fleet_cut: float = 0.0
    confirm_rows: int = 1  # consecutive rows below 0 before a unit is flagged

    def __post_init__(self) -> None:
        if not self.judge_spread:
            object.__setattr__(self, "judge_spread", (1,) * len(self.scored))
        _core.validate_baseline_params(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BaselineParams:
        return cls(
            n_channels=int(d["n_channels"]),
            sigma_floor=tuple(float(v) for v in d["sigma_floor"]),
            stuck_run=tuple(int(v) for v in d["stuck_run"]),
            scored=tuple(int(v) for v in d["scored"]),
            level_scale=tuple(float(v) for v in d["level_scale"]),
            spread_scale=tuple(float(v) for v in d["spread_scale"]),
            judge_spread=tuple(int(v) for v in d["judge_spread"]),
            baseline_samples=int(d["baseline_samples"]),
            baseline_s=float(d["baseline_s"]),
            window=int(d["window"]),
            missing_flags=bool(d["missing_flags"]),
            mean_tau_s=float(d["mean_tau_s"]),
            threshold=float(d["threshold"]),
            fleet_cut=float(d["fleet_cut"]),
            confirm_rows=int(d["confirm_rows"]),
        )


def deviation_names(channels: Sequence[str]) -> list[str]:
    """Name of each baseline explanation code: ``<channel>:<level|spread|missing|stuck>``."""
    return [f"{c}:{kind}" for c in channels for kind in DEVIATION_KINDS]


def explanation_name(code: int, channels: Sequence[str]) -> str:
    """Name of an explanation code as feedback carries it (docs/protocol.md, top features).

    Below ``len(channels)``: the fleet forest's feature, i.e. that channel; from there on,
    ``n_channels + channel * len(DEVIATION_KINDS) + kind``: the unit's deviation from its own
    baseline, ``<channel>:<kind>``. So every explanation names the stage and the channel.
    """
    n = len(channels)
    if 0 <= code < n:
        return channels[code]
    channel, kind = divmod(code - n, len(DEVIATION_KINDS))
    if 0 <= channel < n:
        return f"{channels[channel]}:{DEVIATION_KINDS[kind]}"
    return f"feature {code}"


@dataclass(frozen=True)
class BaselineResult:
    decision: npt.NDArray[np.float64]  # 1 - D / threshold per row; NaN while learning
    learning: npt.NDArray[np.bool_]
    top_code: npt.NDArray[np.int16]  # (rows, k): channel * 7 + kind, -1 = empty
    top_weight: npt.NDArray[np.float32]  # (rows, k), in thresholds
    raw_deviation: npt.NDArray[np.float64]  # (rows, 2 * n_scored) |z| then |ln s|; empty unless asked
    # v3 only, empty unless asked: (rows, 3 * n_monitored + 2) z, |EWMA z|, EW std of z, SPE, T^2
    context_raw: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    # v3 only, empty unless asked: (rows, n_channels) what the fleet forest reads with forest_input="residual"
    forest_input: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), np.float32))


class BaselineStage:
    """Baseline state of ``n_units`` units (index 0..n_units-1); push rows in time order per unit."""

    def __init__(self, params: BaselineParams, n_units: int, context: ContextParams | None = None) -> None:
        self.params = params
        self.context = context
        self._core = _core.BaselineStage(
            params.as_dict(), n_units, None if context is None else context.as_dict()
        )

    @classmethod
    def wrapping(
        cls, core: _core.BaselineStage, params: BaselineParams, context: ContextParams | None = None
    ) -> BaselineStage:
        """The stage a native ``UnitScorer`` owns (it stays valid while that scorer lives)."""
        stage = cls.__new__(cls)
        stage.params = params
        stage.context = context
        stage._core = core
        return stage

    @property
    def n_units(self) -> int:
        return int(self._core.n_units)

    def push(
        self,
        unit: npt.ArrayLike,
        time_s: npt.ArrayLike,
        values: npt.ArrayLike,
        top_k: int = 0,
        *,
        raw: bool = False,
        setpoint: npt.ArrayLike | None = None,
        state: npt.ArrayLike | None = None,
        context_raw: bool = False,
        forest_input: bool = False,
    ) -> BaselineResult:
        """Rows in processing order: unit index, time (s), readings (rows x n_channels, read as float32).

        ``setpoint`` (A, NaN unknown) and ``state`` (UnitState codes 0 off .. 3 derated) are each
        row's operating context, used by a v3 context stage (None: unknown / every unit on).
        """
        u = np.ascontiguousarray(unit, dtype=np.uint32)
        t = np.ascontiguousarray(time_s, dtype=np.float64)
        x = np.ascontiguousarray(values, dtype=np.float32)
        sp = None if setpoint is None else np.ascontiguousarray(setpoint, dtype=np.float32)
        st = None if state is None else np.asarray(state)
        decision, learning, code, weight, raw_dev, ctx_raw, forest_in = self._core.push(
            u, t, x, top_k, raw, sp, st, context_raw, forest_input
        )
        return BaselineResult(decision, learning.astype(bool), code, weight, raw_dev, ctx_raw, forest_in)

    def unit_info(self, unit: int) -> dict[str, Any]:
        return dict(self._core.unit_info(unit))

    def reset_unit(self, unit: int) -> None:
        self._core.reset_unit(unit)

    def save_state(self) -> bytes:
        return bytes(self._core.save_state())

    def load_state(self, data: bytes) -> None:
        self._core.load_state(data)

    def save_state_file(self, path: str | os.PathLike[str]) -> None:
        """Atomic: a crash leaves the previous file or this one, never a torn one."""
        self._core.save_state_file(os.fspath(path))

    def load_state_file(self, path: str | os.PathLike[str]) -> None:
        self._core.load_state_file(os.fspath(path))
