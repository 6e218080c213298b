"""Fitting the context stage of detection engine v3 on nominal data (``laserguard train``).

Every number a threshold depends on comes from rows the fits did not see: each unit's series
is cut into ``folds`` contiguous time blocks; for block k the fleet model, the residual sigmas,
the spread references and the PCA are fitted on the other blocks, then the real C++ stage runs
over every unit's whole series (its calibration learns online as it would live) and the
statistics of block k's rows are kept. The scales and the threshold are percentiles of those
held-out statistics (docs/detection.md "v3"; the v3 findings: in-sample percentiles are too low).

1. Signals: 1, ``powered`` (state != off), ``s`` (setpoint when powered), each context channel
   (centred, scaled), first-order filters of ``s`` and of the context channels (time constants
   in seconds, the C++ discretisation), products (``s^2``, ``s * context``, ``powered * context``,
   filtered ``s^2``).
2. Fleet model: ridge least squares of each monitored channel on the terms (nominal rows).
3. C++ pass with unit sigmas and no limits: the residuals after each unit's online calibration.
   ``resid_sigma`` = their std, ``spread_ref`` = median EW std, PCA of the standardised residuals
   (components up to ``pca_variance``, at most n_monitored - 1).
4. C++ pass with those: per held-out row |EWMA z|, EW std of z, smoothed SPE and T^2.
5. ``level_scale``, ``spread_scale``, ``spe_limit`` (``t2_limit``): the ``scale_quantile``
   percentile of each; ``threshold``: the smallest D keeping the stage and the rules at the
   stage's share of ``target_fpr`` on the held-out rows, extrapolated from the exponential tail
   of held-out D when too few rows lie beyond that quantile to read it (``_threshold``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from laserguard.model.baseline import BaselineParams, BaselineStage
from laserguard.model.context import SIGNAL_ONE, SIGNAL_POWERED, SIGNAL_SETPOINT, ContextParams

FloatArray = npt.NDArray[np.float64]
MIN_SCALE: Final[float] = 1e-9
# Placeholder threshold for the fitting passes: nothing flags on D, so every row calibrates.
_NO_THRESHOLD: Final[float] = 1e300


@dataclass(frozen=True)
class ContextFitOptions:
    """Choices of the fit; every time constant in seconds unless it says rows."""

    setpoint_taus_s: tuple[float, ...] = (4.0, 30.0)  # filters of s (warm-up, steps)
    context_taus_s: tuple[float, ...] = (30.0,)  # filters of each context channel
    calibration: str = "affine"  # "none" | "offset" | "affine"
    forest_input: str = "raw"  # "raw" | "residual": what the fleet forest reads
    calib_tau_s: float | None = None  # None: the baseline's mean_tau_s (0 there: never forget)
    calib_prior_rows: float = 60.0  # weight of the gain prior, in rows of the training rate
    # Once a unit has learned, its learning period weighs this much (s) in its calibration, and
    # rows above calib_max_deviation x threshold do not teach it: a degradation at one operating
    # point is not learned away (measured: an unanchored calibration absorbed slow faults).
    calib_anchor_s: float = 3600.0
    calib_max_deviation: float = 0.5
    calib_change_s: float = 60.0  # rows this soon after an operating change always teach (the slope)
    gain_limit: float = 0.25
    level_tau_rows: float = 0.0  # EWMA of z before the level, in rows of the training rate
    spread_tau_rows: float = 30.0
    spe_tau_rows: float = 10.0  # the TEP findings: SPE smoothed over ~10 rows lifts detection
    pca_variance: float = 0.90
    use_t2: bool = False  # T^2 drifts where training does not span the slow modes (findings)
    folds: int = 5
    scale_quantile: float = 99.9
    stage_share: float = 0.95  # of target_fpr; the rest is the fleet forest's (v2's split)
    ridge: float = 1e-4  # per row, on standardised terms
    # With a value, a context channel enters a monitored channel's model only if leaving it out
    # makes that channel's held-out squared error this much larger (see _select_context). None
    # (default): every context channel for every channel, clamped to the trained range. Measured
    # on lab (train seed 501 3 h, fresh seed 502 1 h, stage only): None 0.0145 % of healthy rows
    # flagged, 0.1 gave 2.5 % (it kept only the heat sink for the optical channels).
    context_min_gain: float | None = None
    change_hold_s: float = 0.0
    change_relax: float = 1.0
    # per monitored channel 0/1; None: judged unless the channel holds its readings (more than
    # max_repeat_share of consecutive healthy readings identical: a sampled-and-held analyser,
    # whose variability over a window says nothing about the plant)
    judge_spread: tuple[int, ...] | None = None
    max_repeat_share: float = 0.01
    min_spread_windows: float = 1000.0  # nominal rows / spread_tau_rows needed to judge spread
    # Channels the baseline judges on level only (shared supply rails) on residual level only too:
    # needed when training sees few supplies (a 32-unit fleet has 2); off by default, because the
    # rail's residual spread is what catches a unit's spiking rail sensor (measured: sensor_spikes
    # recall 99 % with it, 60-67 % without, on 3 h of 2 x 32 units).
    inherit_level_only: bool = False
    # The threshold is the held-out D quantile when the held-out rows put at least this many
    # above it; with fewer rows (TEP: 450 rows, 0.43 expected) it is extrapolated from the
    # exponential tail of the excesses over the tail_quantile of held-out D (see _threshold).
    # The simulator's fits hold out hundreds of thousands of rows: they read the quantile.
    tail_min_exceedances: float = 10.0
    tail_quantile: float = 0.90
    # The fleet's spread of unit gains, measured on the training units that span operating
    # points (see _gain_spread), goes into the model (gain_sd): a unit far from where it learned
    # is judged within what an unlearned gain allows until its rows there teach it. Measured on
    # lab (dev seeds): without it a unit that learned at 8 A and moved to 5.2 A stayed flagged.
    # Context is clamped to the trained range widened by this share of it: a supply loaded far
    # beyond training by a neighbour's fault is not extrapolated into healthy units, while an
    # off unit's heat sink a little warmer than training saw still explains its diode
    # temperature (dev tour: 0.41 % -> 0.090 % of healthy rows, off units 5.8 % -> 0.06 %;
    # lab, production and the production day unchanged).
    clamp_margin: float = 0.25
    fit_gain_spread: bool = True
    gain_spread_min_units: int = 8
    # Context channels judged by how they move between samples (the EW rms of their differences
    # over spread_tau against training's): a spiking context sensor. Measured: every sensor_spikes
    # event v3 missed before was a spike on a context channel. Held readings are not judged.
    judge_jumps: bool = True


@dataclass(frozen=True)
class ContextFit:
    params: ContextParams
    baseline: BaselineParams  # the caller's, with the threshold of the v3 stage and rules
    held_out_rows: int
    held_out_fpr: float  # the stage and the rules together on the held-out rows
    threshold_from: str = "quantile"  # "quantile" of held-out D, or its extrapolated "tail"
    flagged_by: dict[str, int] = field(default_factory=dict)
    residual_std: dict[str, float] = field(default_factory=dict)  # held-out, per monitored channel
    context_used: dict[str, list[str]] = field(default_factory=dict)  # per monitored channel

    def report(self) -> dict[str, Any]:
        return {
            "params": self.params.as_json(),
            "threshold": self.baseline.threshold,
            "held_out_rows": self.held_out_rows,
            "held_out_fpr": self.held_out_fpr,
            "threshold_from": self.threshold_from,
            "flagged_by": dict(self.flagged_by),
            "residual_std": dict(self.residual_std),
            "context_used": dict(self.context_used),
        }


# ----------------------------------------------------------------------------------- signals


@dataclass(frozen=True)
class _Design:
    """The signal layout (what ContextParams stores) and how to compute it in numpy."""

    context: tuple[int, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    low: tuple[float, ...]  # the trained range of each context channel (the stage clamps to it)
    high: tuple[float, ...]
    filter_source: tuple[int, ...]
    filter_tau_s: tuple[float, ...]
    term_a: tuple[int, ...]
    term_b: tuple[int, ...]
    uses_unit_context: bool


def _design(
    values: FloatArray, context: Sequence[int], uses_unit_context: bool, options: ContextFitOptions
) -> _Design:
    center, scale, low, high = [], [], [], []
    for c in context:
        col = values[:, c]
        col = col[np.isfinite(col)]
        mid = float(np.median(col)) if col.size else 0.0
        spread = float(np.std(col)) if col.size else 1.0
        center.append(mid)
        scale.append(spread if spread > MIN_SCALE else 1.0)
        lo, hi = (float(col.min()), float(col.max())) if col.size else (0.0, 0.0)
        margin = options.clamp_margin * (hi - lo)
        low.append(lo - margin)
        high.append(hi + margin)
    first_filter = 3 + len(context)
    sources: list[int] = []
    taus: list[float] = []
    if uses_unit_context:
        for tau in options.setpoint_taus_s:
            sources.append(SIGNAL_SETPOINT)
            taus.append(float(tau))
    for i in range(len(context)):
        for tau in options.context_taus_s:
            sources.append(3 + i)
            taus.append(float(tau))
    # Every setpoint-driven term vanishes when the unit is off (s = 0 there, and a filtered s
    # only enters multiplied by `powered` or by s): an off unit's expectation is its own
    # intercept and context terms, never the tail of a filter (the simulated junction follows
    # the current at once; the filters are for the slower heat-sink and TEC dynamics).
    terms: list[tuple[int, int]] = [(SIGNAL_ONE, SIGNAL_ONE)]
    if uses_unit_context:
        terms += [
            (SIGNAL_POWERED, SIGNAL_ONE),
            (SIGNAL_SETPOINT, SIGNAL_ONE),
            (SIGNAL_SETPOINT, SIGNAL_SETPOINT),
        ]
    for i in range(len(context)):
        g = 3 + i
        terms.append((g, SIGNAL_ONE))
        if uses_unit_context:
            terms += [(g, SIGNAL_POWERED), (g, SIGNAL_SETPOINT)]
    for j, source in enumerate(sources):
        g = first_filter + j
        if source == SIGNAL_SETPOINT:
            terms += [(g, SIGNAL_POWERED), (g, SIGNAL_SETPOINT)]
        else:
            terms.append((g, SIGNAL_ONE))
            if uses_unit_context:
                terms.append((g, SIGNAL_POWERED))
    return _Design(
        context=tuple(int(c) for c in context),
        center=tuple(center),
        scale=tuple(scale),
        low=tuple(low),
        high=tuple(high),
        filter_source=tuple(sources),
        filter_tau_s=tuple(taus),
        term_a=tuple(a for a, _ in terms),
        term_b=tuple(b for _, b in terms),
        uses_unit_context=uses_unit_context,
    )


def _filter(signal: FloatArray, dt: FloatArray, first: npt.NDArray[np.bool_], tau: float) -> FloatArray:
    """The C++ first-order filter over rows in order (`first` marks each unit's first row)."""
    weight = -np.expm1(-dt / tau)
    out = np.empty_like(signal)
    y = held = math.nan
    for i in range(signal.size):
        v = signal[i]
        if first[i] or not math.isfinite(y):
            y = v
            held = math.nan
        elif math.isfinite(held):
            y += weight[i] * (held - y)  # the previous row's input, held over the interval
        if math.isfinite(v):
            held = v
        out[i] = y
    return out


def _terms(
    design: _Design,
    values: FloatArray,
    setpoint: FloatArray,
    powered: FloatArray,
    order: npt.NDArray[np.intp],
    dt: FloatArray,
    first: npt.NDArray[np.bool_],
) -> FloatArray:
    """Term matrix (rows x n_terms) in the caller's row order."""
    n = values.shape[0]
    signals = [
        np.ones(n),
        powered,
        np.where(powered > 0, setpoint, 0.0) if design.uses_unit_context else np.zeros(n),
    ]
    for c, mid, sc, lo, hi in zip(
        design.context, design.center, design.scale, design.low, design.high, strict=True
    ):
        signals.append((np.clip(values[:, c], lo, hi) - mid) / sc)
    for source, tau in zip(design.filter_source, design.filter_tau_s, strict=True):
        filtered = np.empty(n)
        filtered[order] = _filter(signals[source][order], dt, first, tau)
        signals.append(filtered)
    return np.column_stack(
        [signals[a] * signals[b] for a, b in zip(design.term_a, design.term_b, strict=True)]
    )


# ----------------------------------------------------------------------------------- fitting


def _ridge(
    terms: FloatArray, targets: FloatArray, ridge: float, mask: npt.NDArray[np.bool_] | None = None
) -> FloatArray:
    """Coefficients (n_terms x n_targets) of a ridge fit on standardised columns (a constant
    column is not shrunk); rows with a non-finite term or target are left out per target.
    ``mask`` (n_terms x n_targets): the terms each target may use (others get 0)."""
    coef = np.zeros((terms.shape[1], targets.shape[1]))
    rows_ok = np.isfinite(terms).all(axis=1)
    for j in range(targets.shape[1]):
        ok = rows_ok & np.isfinite(targets[:, j])
        a, y = terms[ok], targets[ok, j]
        if mask is not None:
            a = np.where(mask[:, j], a, 0.0)
        if y.size == 0:
            continue
        mean = a.mean(axis=0)
        scale = a.std(axis=0)
        varying = scale > MIN_SCALE * np.maximum(1.0, np.abs(mean))
        if not varying.any():
            constant = np.flatnonzero(np.abs(mean) > 0)
            if constant.size:
                coef[constant[0], j] = y.mean() / mean[constant[0]]
            continue
        a_std = (a[:, varying] - mean[varying]) / scale[varying]
        y_mean = y.mean()
        gram = a_std.T @ a_std
        w = np.linalg.solve(gram + ridge * y.size * np.eye(gram.shape[0]), a_std.T @ (y - y_mean))
        coef[varying, j] = w / scale[varying]
        # The intercept goes to the first constant non-zero column (the term 1).
        constant = np.flatnonzero(~varying & (np.abs(mean) > 0))
        offset = y_mean - float(mean[varying] @ coef[varying, j])
        if constant.size:
            coef[constant[0], j] += offset / mean[constant[0]]
    return coef


def _fleet_model(
    terms: FloatArray,
    targets: FloatArray,
    powered: FloatArray,
    design: _Design,
    ridge: float,
    mask: npt.NDArray[np.bool_] | None = None,
) -> FloatArray:
    """With unit context: one model for powered rows and one for off rows, written as one set
    of coefficients (a term g*powered carries the difference), so neither state's fit is a
    compromise with the other's. Without: one ridge fit."""
    if not design.uses_unit_context:
        return _ridge(terms, targets, ridge, mask)
    on = powered > 0
    coef = (
        _ridge(terms[on], targets[on], ridge, mask)
        if on.any()
        else np.zeros((terms.shape[1], targets.shape[1]))
    )
    # Off rows: the terms g*1 that have a partner g*powered (1 with powered, each context
    # channel and its filters); powered rows see g*1 + g*powered, so g*1 takes the off
    # coefficient and g*powered the difference. Terms of s vanish when off.
    pair = {design.term_a[i]: i for i, b in enumerate(design.term_b) if b == SIGNAL_POWERED}
    pair[SIGNAL_ONE] = next(
        i
        for i, (a, b) in enumerate(zip(design.term_a, design.term_b, strict=True))
        if (a, b) == (SIGNAL_POWERED, SIGNAL_ONE)
    )
    off_terms = [i for i, b in enumerate(design.term_b) if b == SIGNAL_ONE and design.term_a[i] in pair]
    if (~on).any():
        off_coef = _ridge(
            terms[~on][:, off_terms], targets[~on], ridge, None if mask is None else mask[off_terms]
        )
        for row, i in enumerate(off_terms):
            partner = pair[design.term_a[i]]
            coef[partner] += coef[i] - off_coef[row]
            coef[i] = off_coef[row]
    return coef


def _context_groups(design: _Design) -> list[npt.NDArray[np.intp]]:
    """Per context channel, the terms that carry it (itself, its filters, their products)."""
    first_filter = 3 + len(design.context)
    groups = []
    for i in range(len(design.context)):
        signals = {3 + i} | {first_filter + j for j, s in enumerate(design.filter_source) if s == 3 + i}
        pairs = zip(design.term_a, design.term_b, strict=True)
        groups.append(
            np.array([t for t, (a, b) in enumerate(pairs) if a in signals or b in signals], dtype=np.intp)
        )
    return groups


def _within_units(unit: npt.NDArray[np.uint32], setpoint: FloatArray, columns: FloatArray) -> FloatArray:
    """Each column with every unit's own least-squares line in the setpoint taken out
    (Frisch-Waugh-Lovell for per-unit offsets and slopes: what the online calibration absorbs)."""
    n_units = int(unit.max()) + 1 if unit.size else 0
    w = np.bincount(unit, minlength=n_units).astype(float)
    w = np.maximum(w, 1.0)
    s_mean = np.bincount(unit, setpoint, n_units) / w
    ds = setpoint - s_mean[unit]
    s_var = np.bincount(unit, ds * ds, n_units)
    out = np.empty_like(columns)
    for j in range(columns.shape[1]):
        col = columns[:, j]
        c_mean = np.bincount(unit, col, n_units) / w
        dc = col - c_mean[unit]
        slope = np.bincount(unit, ds * dc, n_units) / np.where(s_var > 0, s_var, 1.0)
        out[:, j] = dc - np.where(s_var > 0, slope, 0.0)[unit] * ds
    return out


def _select_context(
    terms: FloatArray,
    targets: FloatArray,
    unit: npt.NDArray[np.uint32],
    setpoint: FloatArray,
    design: _Design,
    fold: npt.NDArray[np.int64],
    ridge: float,
    min_gain: float,
) -> npt.NDArray[np.bool_]:
    """Which context channels each monitored channel's expectation may use (n_terms x n_targets).

    A context channel stays in a channel's model only if leaving it out makes the held-out
    (contiguous time blocks) squared error of that channel at least ``min_gain`` larger, judged
    after each unit's own offset and slope (what its calibration learns) are taken out: a unit's
    own channels should not follow what merely correlates in training, such as the load of the
    supply it shares (a neighbour's fault moves it far outside the training data), while an
    effect smaller than the spread between units (the heat sink on optical power) still counts."""
    n_terms, nm = terms.shape[1], targets.shape[1]
    full = np.ones((n_terms, nm), dtype=bool)
    a = _within_units(unit, setpoint, terms)
    y = _within_units(unit, setpoint, targets)

    def held_out_mse(mask: npt.NDArray[np.bool_]) -> FloatArray:
        sq = np.zeros(nm)
        count = np.zeros(nm)
        for k in np.unique(fold):
            train, test = fold != k, fold == k
            coef = _ridge(a[train], y[train], ridge, mask)
            err = y[test] - a[test] @ coef
            ok = np.isfinite(err)
            sq += (np.where(ok, err, 0.0) ** 2).sum(axis=0)
            count += ok.sum(axis=0)
        return sq / np.maximum(count, 1)

    base = held_out_mse(full)
    mask = full.copy()
    for group in _context_groups(design):
        reduced = full.copy()
        reduced[group, :] = False
        drop = held_out_mse(reduced) <= base * (1.0 + min_gain)
        mask[np.ix_(group, np.flatnonzero(drop))] = False
    return mask


def _gain_spread(
    expected: FloatArray,
    targets: FloatArray,
    unit: npt.NDArray[np.uint32],
    sigma: FloatArray,
    min_units: int,
) -> FloatArray:
    """Per monitored channel, the spread of the units' gains (slope of the reading on the fleet's
    expectation, each unit over its own rows): 1.4826 x the median absolute deviation over the
    units whose expectation moves by at least 10 residual sigmas (std), so that their slope is
    well determined; 0 when fewer than ``min_units`` units qualify (a table whose units never
    change operating point: their gain is never needed)."""
    nm = targets.shape[1]
    out = np.zeros(nm)
    n_units = int(unit.max()) + 1 if unit.size else 0
    for j in range(nm):
        e, x = expected[:, j], targets[:, j]
        ok = np.isfinite(e) & np.isfinite(x)
        u = unit[ok]
        e, x = e[ok], x[ok]
        w = np.bincount(u, minlength=n_units).astype(float)
        safe = np.maximum(w, 1.0)
        de = e - (np.bincount(u, e, n_units) / safe)[u]
        dx = x - (np.bincount(u, x, n_units) / safe)[u]
        var = np.bincount(u, de * de, n_units) / safe
        cov = np.bincount(u, de * dx, n_units) / safe
        spans = (w >= 2) & (np.sqrt(var) >= 10.0 * sigma[j])
        if spans.sum() < min_units:
            continue
        gains = cov[spans] / var[spans]
        out[j] = 1.4826 * float(np.median(np.abs(gains - np.median(gains))))
    return out


def _pca(z: FloatArray, variance: float) -> tuple[int, FloatArray, FloatArray]:
    """Components of the (uncentred: healthy z has mean ~0) second moment of z."""
    nm = z.shape[1]
    if nm < 2 or z.shape[0] < 2:
        return 0, np.zeros((nm, 0)), np.zeros(0)
    moment = z.T @ z / z.shape[0]
    eigval, eigvec = np.linalg.eigh(moment)
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = eigval[order], eigvec[:, order]
    share = np.cumsum(eigval) / max(float(eigval.sum()), MIN_SCALE)
    k = int(np.searchsorted(share, variance) + 1)
    k = max(0, min(k, nm - 1, int(np.sum(eigval > MIN_SCALE))))
    return k, eigvec[:, :k], np.maximum(eigval[:k], MIN_SCALE)


def _quantile(x: FloatArray, q: float, floor: float = MIN_SCALE) -> float:
    x = x[np.isfinite(x)]
    return max(float(np.percentile(x, q)), floor) if x.size else 1.0


def _threshold(d: FloatArray, budget: float, opts: ContextFitOptions) -> tuple[float, str]:
    """The held-out D exceeded by the share ``budget`` of rows, and how it was read.

    Read from the rows ("quantile") when at least ``tail_min_exceedances`` of them lie above it.
    With fewer, the empirical quantile is one of the few largest values seen: the share of a
    longer run above it is far larger than ``budget``, the more so as smoothed statistics are
    autocorrelated (TEP: 450 held-out rows, lag-1 autocorrelation 0.84, about 33 independent
    values, so its threshold sat near the 97th percentile; d00_te flagged 5.6 % against 0.1 %).
    Then the threshold is extrapolated ("tail"): peaks over the ``tail_quantile`` percentile of the
    held-out D, their excesses fitted by an exponential (the generalised Pareto tail of shape 0,
    whose maximum-likelihood scale is the mean excess), solved for the share ``budget``."""
    if not d.size:
        return 1.0, "quantile"
    if d.size * budget >= opts.tail_min_exceedances:
        return max(float(np.quantile(d, 1.0 - budget)), MIN_SCALE), "quantile"
    u = float(np.quantile(d, opts.tail_quantile))
    excess = d[d > u] - u
    if not excess.size:  # every value at or below u (a constant D): nothing to extrapolate
        return max(float(d.max()), MIN_SCALE), "quantile"
    share_above = excess.size / d.size
    return max(u + float(excess.mean()) * math.log(share_above / budget), MIN_SCALE), "tail"


def fit_context(
    unit: npt.ArrayLike,
    time_s: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    baseline: BaselineParams,
    context_channels: Sequence[int],
    setpoint: npt.ArrayLike | None = None,
    state: npt.ArrayLike | None = None,
    monitored: Sequence[int] | None = None,
    nominal: npt.ArrayLike | None = None,
    target_fpr: float = 0.001,
    options: ContextFitOptions | None = None,
    channel_names: Sequence[str] | None = None,
) -> ContextFit:
    """Fit the v3 context stage on rows in time order per unit (training rows only).

    ``setpoint``/``state`` are each row's operating context (None: the table has none, the
    stage then uses only the context channels). ``nominal`` marks healthy rows (default: all);
    faulty rows still run through the stage (time order) but fit and count nothing.
    """
    opts = options or ContextFitOptions()
    u_raw = np.asarray(unit)
    t = np.asarray(time_s, dtype=np.float64)
    x = np.asarray(values, dtype=np.float64)
    n_rows, n_channels = x.shape
    if u_raw.shape != (n_rows,) or t.shape != (n_rows,):
        raise ValueError(f"unit and time_s must have shape ({n_rows},), got {u_raw.shape} and {t.shape}")
    if not 0.0 < target_fpr < 1.0:
        raise ValueError(f"target_fpr must be in (0, 1), got {target_fpr}")
    if opts.folds < 2:
        raise ValueError(f"folds must be >= 2, got {opts.folds}")
    u: npt.NDArray[np.uint32] = np.unique(u_raw, return_inverse=True)[1].astype(np.uint32)
    n_units = int(u.max()) + 1 if n_rows else 0
    context = sorted(int(c) for c in context_channels)
    for c in context:
        if not 0 <= c < n_channels:
            raise ValueError(f"context channel {c} outside [0, {n_channels})")
    judged = (
        sorted(int(c) for c in monitored)
        if monitored is not None
        else [c for c in range(n_channels) if c not in context]
    )
    if not judged:
        raise ValueError("no channel left to monitor: every channel is a context channel")
    nm = len(judged)
    uses_unit_context = setpoint is not None or state is not None
    sp = np.full(n_rows, np.nan) if setpoint is None else np.asarray(setpoint, dtype=np.float64)
    st = np.full(n_rows, 2, dtype=np.uint8) if state is None else np.asarray(state, dtype=np.uint8)
    powered = (st != 0).astype(np.float64) if uses_unit_context else np.ones(n_rows)
    healthy = np.ones(n_rows, dtype=bool) if nominal is None else np.asarray(nominal, dtype=bool)
    names = list(channel_names) if channel_names is not None else [f"ch{c}" for c in range(n_channels)]

    # Each unit's rows in time order: filters, folds and the sampling period come from them.
    order = np.lexsort((np.arange(n_rows), u))
    us, ts = u[order], t[order]
    first = np.ones(n_rows, dtype=bool)
    first[1:] = us[1:] != us[:-1]
    dt = np.where(first, 0.0, np.maximum(np.diff(ts, prepend=ts[:1]), 0.0))
    positive = dt[dt > 0]
    period = float(np.median(positive)) if positive.size else 1.0
    position = np.zeros(n_rows, dtype=np.int64)  # index of the row within its unit
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, n_rows))
    position[order] = np.arange(n_rows) - np.repeat(starts, counts)
    fold = np.minimum(position * opts.folds // np.repeat(counts, counts)[np.argsort(order)], opts.folds - 1)

    design = _design(x, context, uses_unit_context, opts)
    terms = _terms(design, x, sp, powered, order, dt, first)
    targets = x[:, judged]
    calib_tau = baseline.mean_tau_s if opts.calib_tau_s is None else opts.calib_tau_s
    # Per channel, the share of consecutive healthy readings that repeat exactly: a channel that
    # holds its readings (a sampled-and-held analyser) says nothing by its variability or jumps.
    ordered, healthy_next = x[order], healthy[order][1:, None] & ~first[1:, None]

    def repeat_share(columns: Sequence[int]) -> FloatArray:
        cols = ordered[:, list(columns)]
        same = (cols[1:] == cols[:-1]) & healthy_next
        return same.mean(axis=0) if same.shape[0] else np.zeros(len(columns))

    # A 99.9th percentile of a statistic smoothed over spread_tau needs about a thousand
    # independent windows among the nominal rows; with fewer (25 h of a plant sampled every
    # 3 min has 17) it is the largest value seen, and the variability of a healthy channel
    # drifts past it on any longer run (measured on TEP: every false alarm was a spread).
    enough = healthy.sum() / max(opts.spread_tau_rows, 1.0) >= opts.min_spread_windows
    if opts.judge_spread is not None:
        judge_spread = tuple(int(v) for v in opts.judge_spread)
    else:
        # With inherit_level_only, a channel the baseline stage judges on level only (a supply rail
        # several units share: a neighbour moves its variability) is judged on its residual level only.
        level_only = (
            {c for c, flag in zip(baseline.scored, baseline.judge_spread, strict=True) if not flag}
            if opts.inherit_level_only
            else set()
        )
        judge_spread = tuple(
            int(v <= opts.max_repeat_share and enough and c not in level_only)
            for v, c in zip(repeat_share(judged), judged, strict=True)
        )
    nx = len(context)
    judge_jump = [
        bool(opts.judge_jumps and enough and v <= opts.max_repeat_share) for v in repeat_share(context)
    ]

    def params_for(
        coef: FloatArray,
        sigma: FloatArray,
        spread_ref: FloatArray,
        pca: tuple[int, FloatArray, FloatArray],
        *,
        level_scale: FloatArray | None = None,
        spread_scale: FloatArray | None = None,
        spe_limit: float = 0.0,
        t2_limit: float = 0.0,
        gain_sd: FloatArray | None = None,
        jump_ref: FloatArray | None = None,
        jump_scale: FloatArray | None = None,
    ) -> ContextParams:
        k, loadings, eigenvalues = pca
        expected = terms @ coef
        prior_var = np.maximum(
            np.nanvar(np.where(np.isfinite(expected), expected, np.nan), axis=0), MIN_SCALE
        )
        return ContextParams(
            n_channels=n_channels,
            context=design.context,
            context_center=design.center,
            context_scale=design.scale,
            context_min=design.low,
            context_max=design.high,
            term_a=design.term_a,
            term_b=design.term_b,
            monitored=tuple(judged),
            coef=tuple(float(v) for v in coef.ravel()),
            resid_sigma=tuple(float(v) for v in sigma),
            prior_var=tuple(float(v) for v in prior_var),
            level_scale=tuple(float(v) for v in (np.ones(nm) if level_scale is None else level_scale)),
            spread_ref=tuple(float(v) for v in spread_ref),
            spread_scale=tuple(float(v) for v in (np.ones(nm) if spread_scale is None else spread_scale)),
            judge_spread=tuple(judge_spread),
            filter_source=design.filter_source,
            filter_tau_s=design.filter_tau_s,
            uses_unit_context=uses_unit_context,
            calibration=opts.calibration,
            forest_input=opts.forest_input,
            calib_tau_s=float(calib_tau),
            calib_prior_s=opts.calib_prior_rows * period,
            gain_limit=opts.gain_limit,
            max_dt_s=10.0 * period,
            calib_anchor_s=opts.calib_anchor_s,
            calib_max_deviation=opts.calib_max_deviation,
            calib_change_s=opts.calib_change_s,
            level_tau_s=opts.level_tau_rows * period,
            spread_tau_s=max(opts.spread_tau_rows * period, MIN_SCALE),
            spe_tau_s=opts.spe_tau_rows * period,
            n_components=k,
            loadings=tuple(float(v) for v in loadings.ravel()),
            eigenvalues=tuple(float(v) for v in eigenvalues),
            spe_limit=spe_limit,
            t2_limit=t2_limit,
            change_hold_s=opts.change_hold_s,
            change_relax=opts.change_relax,
            gain_sd=tuple(float(v) for v in (np.zeros(nm) if gain_sd is None else gain_sd)),
            jump_ref=tuple(float(v) for v in (np.ones(nx) if jump_ref is None else jump_ref)),
            jump_scale=tuple(float(v) for v in (np.zeros(nx) if jump_scale is None else jump_scale)),
        )

    # Selection on powered nominal rows (where the unit's calibration applies).
    rows = healthy & np.isfinite(terms).all(axis=1) & np.isfinite(targets).all(axis=1) & (powered > 0)
    setpoint_on = np.where(np.isfinite(sp), sp, 0.0) if uses_unit_context else np.zeros(n_rows)
    term_mask = (
        _select_context(
            terms[rows],
            targets[rows],
            u[rows],
            setpoint_on[rows],
            design,
            fold[rows],
            opts.ridge,
            opts.context_min_gain,
        )
        if context and rows.any() and opts.context_min_gain is not None
        else None
    )
    probe_baseline = replace(baseline, threshold=_NO_THRESHOLD)

    def run(params: ContextParams) -> tuple[FloatArray, FloatArray]:
        stage = BaselineStage(probe_baseline, n_units, params)
        result = stage.push(
            u[order],
            t[order],
            x[order],
            0,
            setpoint=None if setpoint is None else sp[order],
            state=None if state is None else st[order],
            context_raw=True,
        )
        raw = np.empty_like(result.context_raw)
        raw[order] = result.context_raw
        decision = np.empty(n_rows)
        decision[order] = result.decision
        return raw, decision

    def fit_on(train: npt.NDArray[np.bool_]) -> tuple[ContextParams, FloatArray]:
        """Fleet model, sigmas, spread references and PCA from the `train` rows; returns the
        stage parameters (scales 1, no limits) and the calibrated residuals of every row."""
        use = train & healthy
        coef = _fleet_model(terms[use], targets[use], powered[use], design, opts.ridge, term_mask)
        params = params_for(coef, np.ones(nm), np.ones(nm), (0, np.zeros((nm, 0)), np.zeros(0)))
        raw, _ = run(params)
        resid = raw[:, :nm]
        use = train & healthy & np.isfinite(resid).all(axis=1)
        sigma = np.array(
            [max(float(np.std(resid[use, j])), MIN_SCALE) if use.any() else 1.0 for j in range(nm)]
        )
        z = resid[use] / sigma
        pca = (
            _pca(z, opts.pca_variance)
            if (opts.pca_variance > 0 and nm > 1)
            else (0, np.zeros((nm, 0)), np.zeros(0))
        )
        spread_std = raw[use, 2 * nm : 3 * nm] / sigma
        spread_ref = np.array([_quantile(spread_std[:, j], 50.0) for j in range(nm)])
        # Each context channel's healthy EW rms of differences (the run above started it at 1:
        # the median over a unit's whole series does not see that start).
        jumps = raw[train & healthy, 3 * nm + 2 :]
        jump_ref = np.array([_quantile(jumps[:, i], 50.0) for i in range(nx)])
        gain_use = use & (powered > 0)
        # Capped at gain_limit: the calibration never moves a gain further than that (slopes of
        # units whose expectation explains little of their readings can scatter far wider).
        gain_sd = (
            np.minimum(
                _gain_spread(
                    terms[gain_use] @ coef,
                    targets[gain_use],
                    u[gain_use],
                    sigma,
                    opts.gain_spread_min_units,
                ),
                opts.gain_limit,
            )
            if opts.fit_gain_spread and opts.calibration == "affine"
            else None
        )
        return params_for(
            coef,
            sigma,
            spread_ref,
            pca,
            spe_limit=1.0 if nm > 1 else 0.0,
            t2_limit=1.0 if opts.use_t2 and pca[0] > 0 else 0.0,
            gain_sd=gain_sd,
            jump_ref=jump_ref,
        ), resid

    def statistics(params: ContextParams) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """Per row the unscaled statistics (level per channel, spread per channel, SPE, T^2)
        of the stage `params`, each unit's whole series run in order, and the rules' flags."""
        raw, decision = run(params)
        ref = np.asarray(params.spread_ref)
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.maximum(0.0, np.log(raw[:, 2 * nm : 3 * nm] / ref))
            jump = np.maximum(0.0, np.log(raw[:, 3 * nm + 2 :] / np.asarray(params.jump_ref)))
        stats = np.column_stack([raw[:, nm : 2 * nm], spread, raw[:, 3 * nm], raw[:, 3 * nm + 1], jump])
        return stats, raw[:, :nm] * np.asarray(params.resid_sigma), decision < 0.0

    active = np.array(
        [True] * nm + [bool(judge_spread[j]) for j in range(nm)] + [nm > 1, opts.use_t2] + judge_jump
    )
    floors = np.array([MIN_SCALE] * nm + [1e-3] * nm + [MIN_SCALE, MIN_SCALE] + [1e-3] * nx)

    def scales_of(stats: FloatArray, rows: npt.NDArray[np.bool_]) -> FloatArray:
        """The scale_quantile percentile of every statistic over `rows` (inactive ones: inf)."""
        return np.array(
            [
                _quantile(stats[rows, i], opts.scale_quantile, floors[i]) if active[i] else math.inf
                for i in range(stats.shape[1])
            ]
        )

    def deviation(stats: FloatArray, scales: FloatArray) -> FloatArray:
        with np.errstate(invalid="ignore"):
            d = np.nanmax(np.where(active, stats / scales, 0.0), axis=1)
        return np.where(np.isfinite(d), d, 0.0)

    # Held-out deviations, block by block. Each block's D is measured in the scales of its own
    # fit's in-sample statistics (as the final model's are), so the threshold taken on the
    # held-out D carries how much larger statistics are on rows a fit has not seen.
    d_held = np.full(n_rows, np.nan)
    resid_held = np.full((n_rows, nm), np.nan)
    rules_flag = np.zeros(n_rows, dtype=bool)
    for k in range(opts.folds):
        held = fold == k
        if not (held & healthy).any() or not (~held & healthy).any():
            continue
        params, _ = fit_on(~held)
        stats, resid, rules = statistics(params)
        judged_in = ~held & healthy & np.isfinite(stats[:, :nm]).any(axis=1)
        if not judged_in.any():
            continue
        d_held[held] = deviation(stats[held], scales_of(stats, judged_in))
        resid_held[held] = resid[held]
        rules_flag[held] = rules[held]

    judged_rows = healthy & np.isfinite(d_held) & np.isfinite(resid_held).any(axis=1)
    if not judged_rows.any():
        raise ValueError(
            "no held-out nominal rows after the units' learning period: more rows per unit are needed "
            f"({opts.folds} time blocks per unit, learning {baseline.baseline_samples or baseline.baseline_s})"
        )
    d = d_held[judged_rows]
    rules = rules_flag[judged_rows]
    budget = max(target_fpr * opts.stage_share - float(rules.mean()), target_fpr * 0.05)
    threshold, threshold_from = _threshold(d[~rules], budget, opts)
    flagged = (d > threshold) | rules

    final, _ = fit_on(np.ones(n_rows, dtype=bool))
    stats, _, _ = statistics(final)
    scales = scales_of(stats, healthy & np.isfinite(stats[:, :nm]).any(axis=1))
    params = replace(
        final,
        level_scale=tuple(float(v) for v in scales[:nm]),
        spread_scale=tuple(float(v) if math.isfinite(v) else 1.0 for v in scales[nm : 2 * nm]),
        spe_limit=float(scales[2 * nm]) if active[2 * nm] else 0.0,
        t2_limit=float(scales[2 * nm + 1]) if active[2 * nm + 1] else 0.0,
        jump_scale=tuple(float(v) if math.isfinite(v) else 0.0 for v in scales[2 * nm + 2 :]),
    )
    resid_std = {names[c]: float(np.nanstd(resid_held[judged_rows, j])) for j, c in enumerate(judged)}
    return ContextFit(
        params=params,
        baseline=replace(baseline, threshold=threshold),
        held_out_rows=int(judged_rows.sum()),
        held_out_fpr=float(flagged.mean()),
        threshold_from=threshold_from,
        flagged_by={"context": int(((d > threshold) & ~rules).sum()), "rules": int(rules.sum())},
        residual_std=resid_std,
        context_used={
            names[c]: [
                names[design.context[i]]
                for i, group in enumerate(_context_groups(design))
                if term_mask is None or term_mask[group, j].any()
            ]
            for j, c in enumerate(judged)
        },
    )
