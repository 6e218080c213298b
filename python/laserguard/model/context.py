"""The context stage of detection engine v3 (C++ ``ContextStage``, model format 2.1/2.2).

Each monitored channel is judged by its residual from the value expected in the unit's
operating context: a fleet linear model on context signals (1, ``powered``, the setpoint ``s``,
the context channels, first-order filtered copies with time constants in seconds, products of
two signals), corrected by each unit's own gain and offset learned online from its unflagged
rows. The residuals are judged per channel (level, spread) and together (PCA SPE / T^2), each
smoothed with a time constant in seconds. Equations: cpp/include/laserguard/model/context_params.hpp
and docs/detection.md ("v3"); the fit is ``laserguard.offline.context_fit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from laserguard import _core

CALIBRATIONS: Final[tuple[str, ...]] = ("none", "offset", "affine")
FOREST_INPUTS: Final[tuple[str, ...]] = ("raw", "residual")
# Signal indices: these three, then one per context channel, then one per filter.
FIXED_SIGNALS: Final[tuple[str, ...]] = tuple(_core.CONTEXT_SIGNALS)
SIGNAL_ONE: Final = 0
SIGNAL_POWERED: Final = 1
SIGNAL_SETPOINT: Final = 2


@dataclass(frozen=True)
class ContextParams:
    """What a model file 2.1/2.2 carries for the context stage (validated by the C++ core)."""

    n_channels: int
    context: tuple[int, ...]  # context channel indices (strictly increasing)
    context_center: tuple[float, ...]
    context_scale: tuple[float, ...]
    context_min: tuple[float, ...]  # the trained range of each context channel (clamped to it)
    context_max: tuple[float, ...]
    term_a: tuple[int, ...]  # per term: two signal indices, the term is their product
    term_b: tuple[int, ...]
    monitored: tuple[int, ...]  # judged channels (strictly increasing, disjoint from context)
    coef: tuple[float, ...]  # n_terms x n_monitored, row-major
    resid_sigma: tuple[float, ...]
    prior_var: tuple[float, ...]
    level_scale: tuple[float, ...]
    spread_ref: tuple[float, ...]
    spread_scale: tuple[float, ...]
    judge_spread: tuple[int, ...] = ()  # empty: every monitored channel
    filter_source: tuple[int, ...] = ()
    filter_tau_s: tuple[float, ...] = ()
    uses_unit_context: bool = True
    calibration: str = "affine"
    forest_input: str = "raw"
    calib_tau_s: float = 0.0
    calib_prior_s: float = 60.0
    gain_limit: float = 0.25
    max_dt_s: float = 10.0
    calib_anchor_s: float = 0.0  # weight of the learning period's calibration once it ends
    calib_max_deviation: float = 1.0  # only rows with D <= this x threshold teach the calibration
    calib_change_s: float = 0.0  # ... or rows this soon after an operating change (the unit's slope)
    level_tau_s: float = 0.0
    spread_tau_s: float = 30.0
    spe_tau_s: float = 0.0
    n_components: int = 0
    loadings: tuple[float, ...] = ()  # n_monitored x n_components, row-major
    eigenvalues: tuple[float, ...] = ()
    spe_limit: float = 0.0
    t2_limit: float = 0.0
    change_hold_s: float = 0.0
    change_relax: float = 1.0
    # Fleet spread of the units' gains (format 2.2): a residual far from where the unit learned
    # is judged within what an unlearned gain allows. Empty: 0, the gain taken as known (2.1).
    gain_sd: tuple[float, ...] = ()
    # Per context channel (format 2.2): the healthy EW rms of its sample-to-sample differences and
    # the scale of their log ratio (0: not judged); a spiking context sensor is `<channel>:spread`.
    # Empty: 1 and 0 (no jumps judged, as 2.1).
    jump_ref: tuple[float, ...] = ()
    jump_scale: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.judge_spread:
            object.__setattr__(self, "judge_spread", (1,) * len(self.monitored))
        if not self.gain_sd:
            object.__setattr__(self, "gain_sd", (0.0,) * len(self.monitored))
        if not self.jump_ref:
            object.__setattr__(self, "jump_ref", (1.0,) * len(self.context))
        if not self.jump_scale:
            object.__setattr__(self, "jump_scale", (0.0,) * len(self.context))
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {self.calibration!r}")
        if self.forest_input not in FOREST_INPUTS:
            raise ValueError(f"forest_input must be one of {FOREST_INPUTS}, got {self.forest_input!r}")
        _core.validate_context_params(self.as_dict())

    @property
    def n_monitored(self) -> int:
        return len(self.monitored)

    @property
    def n_terms(self) -> int:
        return len(self.term_a)

    def as_dict(self) -> dict[str, Any]:
        """The C++ binding's form (calibration and forest_input as their codes)."""
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        d["calibration"] = CALIBRATIONS.index(self.calibration)
        d["forest_input"] = FOREST_INPUTS.index(self.forest_input)
        return d

    def as_json(self) -> dict[str, Any]:
        """Readable form (names, not codes), e.g. for a model card or a training report."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ContextParams:
        def ints(key: str) -> tuple[int, ...]:
            return tuple(int(v) for v in d[key])

        def floats(key: str) -> tuple[float, ...]:
            return tuple(float(v) for v in d[key])

        calibration = d["calibration"]
        forest_input = d["forest_input"]
        return cls(
            n_channels=int(d["n_channels"]),
            context=ints("context"),
            context_center=floats("context_center"),
            context_scale=floats("context_scale"),
            context_min=floats("context_min"),
            context_max=floats("context_max"),
            term_a=ints("term_a"),
            term_b=ints("term_b"),
            monitored=ints("monitored"),
            coef=floats("coef"),
            resid_sigma=floats("resid_sigma"),
            prior_var=floats("prior_var"),
            level_scale=floats("level_scale"),
            spread_ref=floats("spread_ref"),
            spread_scale=floats("spread_scale"),
            judge_spread=ints("judge_spread"),
            filter_source=ints("filter_source"),
            filter_tau_s=floats("filter_tau_s"),
            uses_unit_context=bool(d["uses_unit_context"]),
            calibration=CALIBRATIONS[calibration] if isinstance(calibration, int) else str(calibration),
            forest_input=FOREST_INPUTS[forest_input] if isinstance(forest_input, int) else str(forest_input),
            calib_tau_s=float(d["calib_tau_s"]),
            calib_prior_s=float(d["calib_prior_s"]),
            gain_limit=float(d["gain_limit"]),
            max_dt_s=float(d["max_dt_s"]),
            calib_anchor_s=float(d["calib_anchor_s"]),
            calib_max_deviation=float(d["calib_max_deviation"]),
            calib_change_s=float(d["calib_change_s"]),
            level_tau_s=float(d["level_tau_s"]),
            spread_tau_s=float(d["spread_tau_s"]),
            spe_tau_s=float(d["spe_tau_s"]),
            n_components=int(d["n_components"]),
            loadings=floats("loadings"),
            eigenvalues=floats("eigenvalues"),
            spe_limit=float(d["spe_limit"]),
            t2_limit=float(d["t2_limit"]),
            change_hold_s=float(d["change_hold_s"]),
            change_relax=float(d["change_relax"]),
            gain_sd=floats("gain_sd") if "gain_sd" in d else (),
            jump_ref=floats("jump_ref") if "jump_ref" in d else (),
            jump_scale=floats("jump_scale") if "jump_scale" in d else (),
        )

    @classmethod
    def shape_only(
        cls, n_channels: int, n_filters: int, n_monitored: int, n_context: int = 0
    ) -> ContextParams:
        """Parameters with the shape a saved state was written for (to read it back, e.g. for
        ``baseline list``); they score nothing meaningful."""
        ones = (1.0,) * n_monitored
        # Context channels after the monitored ones (the two sets are disjoint).
        context = tuple(range(n_monitored, n_monitored + n_context))
        return cls(
            n_channels=n_channels,
            context=context,
            context_center=(0.0,) * n_context,
            context_scale=(1.0,) * n_context,
            context_min=(0.0,) * n_context,
            context_max=(0.0,) * n_context,
            term_a=(SIGNAL_ONE,),
            term_b=(SIGNAL_ONE,),
            monitored=tuple(range(n_monitored)),
            coef=(0.0,) * n_monitored,
            resid_sigma=ones,
            prior_var=ones,
            level_scale=ones,
            spread_ref=ones,
            spread_scale=ones,
            filter_source=(SIGNAL_ONE,) * n_filters,
            filter_tau_s=(1.0,) * n_filters,
        )

    def signal_names(self, channels: tuple[str, ...] | list[str]) -> list[str]:
        """Readable name of every context signal (for reports): e.g. ``setpoint~30s``."""
        names = list(FIXED_SIGNALS) + [str(channels[c]) for c in self.context]
        for source, tau in zip(self.filter_source, self.filter_tau_s, strict=True):
            names.append(f"{names[source]}~{tau:g}s")
        return names
