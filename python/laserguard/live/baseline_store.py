"""Per-unit baselines of the live detector: the native frame scorer's LCCs, persisted, resettable.

Files in the state directory (docs/detection.md, "Baseline state"):
- ``lcc<L>.state``: every unit's baseline of LCC L, written by the C++ stage atomically (temp
  file, fsync, rename), so a kill -9 leaves the previous file or the new one, never a torn one.
  It is read when the LCC's first frame arrives, so a restarted detector judges a unit that
  is already faulty against the baseline it learned while healthy, never a new one.
- ``reset-requests/lcc<L>-unit<U>`` or ``lcc<L>-all``: written by ``laserguard baseline reset``
  or the dashboard (after maintenance or a unit swap); the detector applies and deletes them.
A state file that cannot be used (corrupt, other channel count or window) is moved aside to
``lcc<L>.state.unusable-<time>`` (kept, never deleted) and the LCC's units learn afresh.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from laserguard import _core
from laserguard.model.baseline import BaselineParams, BaselineStage
from laserguard.model.context import ContextParams
from laserguard.model.forest import ForestModel
from laserguard.model.numpy_power import power_loop

log = logging.getLogger(__name__)

RESET_DIR: Final = "reset-requests"
_REQUEST = re.compile(r"^lcc(\d+)-(?:unit(\d+)|all)$")


def default_state_dir() -> str:
    """Where `detect` keeps baselines unless told otherwise (the user's state directory)."""
    from platformdirs import user_state_dir

    return os.path.join(user_state_dir("laserguard"), "baselines")


def state_path(state_dir: Path, lcc_id: int) -> Path:
    return state_dir / f"lcc{lcc_id}.state"


def request_reset(state_dir: str | os.PathLike[str], lcc_id: int, unit: int | None) -> Path:
    """Ask the detector (now or at its next start) to forget a unit's baseline (all units: None)."""
    folder = Path(state_dir) / RESET_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"lcc{lcc_id}-all" if unit is None else f"lcc{lcc_id}-unit{unit}")
    path.write_text(f"{time.time():.3f}\n")
    return path


def pending_resets(state_dir: str | os.PathLike[str]) -> list[tuple[int, int | None, Path]]:
    folder = Path(state_dir) / RESET_DIR
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    out: list[tuple[int, int | None, Path]] = []
    for name in names:
        m = _REQUEST.match(name)
        if m:
            out.append((int(m.group(1)), None if m.group(2) is None else int(m.group(2)), folder / name))
    return out


@dataclass
class BaselineEvents:
    """What happened to the baselines since the last call of ``take_events`` (for metrics and logs)."""

    unusable_state: int = 0
    resets: int = 0
    saves: int = 0
    save_errors: int = 0


class LiveBaselines:
    """The native frame scorer (one C++ call per frame) and its per-LCC baselines' lifecycle.

    An LCC is registered on its first frame (the scorer asks for it): its saved state is loaded
    before that frame is scored. Saved periodically, when a unit finishes learning, and on exit.
    """

    def __init__(
        self,
        model: ForestModel,
        state_dir: str | os.PathLike[str] | None,
        save_every_s: float = 30.0,
        top_k: int = 3,
    ):
        self.model = model
        self.state_dir = None if state_dir is None else Path(state_dir)
        self.save_every_s = save_every_s
        loop, data = power_loop() or (0, 0)
        self.frames = _core.FrameScorer(model.core, model.version, top_k, loop, data)
        self.events = BaselineEvents()
        self._next_save = time.monotonic() + save_every_s
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            # A kill -9 mid-save leaves the old state file intact plus an orphaned temporary.
            for orphan in self.state_dir.glob("lcc*.state.tmp.*"):
                orphan.unlink(missing_ok=True)

    def lccs(self) -> list[int]:
        return [int(lcc) for lcc in self.frames.lccs()]

    def stage(self, lcc_id: int) -> BaselineStage | None:
        """The LCC's baseline stage (None for a forest-only model or an LCC not seen yet)."""
        scorer = self.frames.scorer(lcc_id)
        if scorer is None or scorer.stage is None or self.model.baseline is None:
            return None
        return BaselineStage.wrapping(scorer.stage, self.model.baseline, self.model.context)

    def register(self, lcc_id: int, n_units: int) -> None:
        """A scorer for the LCC's first frame (or a new unit count), with its saved baselines."""
        known = self.frames.scorer(lcc_id)
        if known is not None:
            log.warning(
                "LCC %d now sends %d units (was %d): its baselines start again",
                lcc_id,
                n_units,
                known.n_units,
            )
            self._set_aside(lcc_id, "unit count changed")
        self.frames.add_lcc(lcc_id, n_units)
        self._load(lcc_id)
        self.apply_resets(only_lcc=lcc_id)

    def _load(self, lcc_id: int) -> None:
        stage = self.stage(lcc_id)
        if self.state_dir is None or stage is None:
            return
        path = state_path(self.state_dir, lcc_id)
        if not path.exists():
            return
        try:
            stage.load_state_file(path)
            log.info("LCC %d: baselines restored from %s", lcc_id, path)
        except (OSError, ValueError) as exc:
            self.events.unusable_state += 1
            log.error("LCC %d: baseline state %s unusable (%s); its units learn afresh", lcc_id, path, exc)
            self._set_aside(lcc_id, str(exc))

    def _set_aside(self, lcc_id: int, why: str) -> None:
        if self.state_dir is None:
            return
        path = state_path(self.state_dir, lcc_id)
        if path.exists():
            kept = path.with_name(f"{path.name}.unusable-{int(time.time())}")
            path.rename(kept)
            log.warning("kept %s as %s (%s)", path.name, kept.name, why)

    def swap_model(self, model: ForestModel) -> None:
        """After a hot reload: keep every unit's baseline when the new stage can read it."""
        self.model = model
        for lcc_id in self.frames.set_model(model.core, model.version):
            log.warning(
                "LCC %d: baselines not carried over to the new model (other channels or window)", lcc_id
            )

    def apply_resets(self, only_lcc: int | None = None) -> int:
        """Apply pending reset requests for LCCs already seen; returns how many were applied."""
        if self.state_dir is None:
            return 0
        applied = 0
        for lcc_id, unit, path in pending_resets(self.state_dir):
            stage = self.stage(lcc_id)
            if (only_lcc is not None and lcc_id != only_lcc) or stage is None:
                continue  # an LCC not seen yet: applied when its first frame arrives
            if unit is not None and not 0 <= unit < stage.n_units:
                log.error("reset request %s: LCC %d has units 0..%d", path.name, lcc_id, stage.n_units - 1)
                path.unlink(missing_ok=True)
                continue
            for u in range(stage.n_units) if unit is None else [unit]:
                stage.reset_unit(u)
            path.unlink(missing_ok=True)
            applied += 1
            self.events.resets += 1
            log.info(
                "LCC %d: baseline reset (%s); learning again",
                lcc_id,
                "all units" if unit is None else f"unit {unit}",
            )
            self.save(lcc_id)
        return applied

    def save(self, lcc_id: int) -> None:
        """One LCC's baselines, now (the detector spreads its saves over the gaps between frames)."""
        stage = self.stage(lcc_id)
        if self.state_dir is None or stage is None:
            return
        try:
            stage.save_state_file(state_path(self.state_dir, lcc_id))
            self.events.saves += 1
        except OSError as exc:
            self.events.save_errors += 1
            log.error("LCC %d: cannot save baselines: %s", lcc_id, exc)

    def save_all(self) -> None:
        for lcc_id in self.lccs():
            self.save(lcc_id)
        self._next_save = time.monotonic() + self.save_every_s

    def take_due_saves(self, now: float) -> list[int]:
        """Every LCC when the periodic save is due (and the next one is scheduled), else none."""
        if now < self._next_save:
            return []
        self._next_save = now + self.save_every_s
        return self.lccs()

    def take_events(self) -> BaselineEvents:
        events, self.events = self.events, BaselineEvents()
        return events


@dataclass(frozen=True)
class UnitBaselineSummary:
    unit: int
    phase: str  # "new", "learning" or "ready"
    rows_learned: int
    age_s: float | None  # since the baseline froze; None while learning


def baseline_summary(stage: BaselineStage | None, now_s: float) -> list[UnitBaselineSummary]:
    """Per unit of an LCC's stage (empty for a forest-only model)."""
    return [] if stage is None else _summaries(stage, now_s)


def _summaries(stage: BaselineStage, now_s: float) -> list[UnitBaselineSummary]:
    out: list[UnitBaselineSummary] = []
    for unit in range(stage.n_units):
        d = stage.unit_info(unit)
        ready = d["phase"] == "ready"
        age = now_s - float(d["ready_time_s"]) if ready else None
        out.append(UnitBaselineSummary(unit, str(d["phase"]), int(d["rows_learned"]), age))
    return out


def read_saved_baselines(
    state_dir: str | os.PathLike[str], now_s: float
) -> dict[int, list[UnitBaselineSummary]]:
    """Every ``lcc<L>.state`` in the directory, summarised per unit (``baseline list``, the dashboard).

    Raises ValueError naming the file if one is not a sound state file.
    """
    out: dict[int, list[UnitBaselineSummary]] = {}
    folder = Path(state_dir)
    for path in sorted(folder.glob("lcc*.state")):
        m = re.fullmatch(r"lcc(\d+)\.state", path.name)
        if not m:
            continue
        data = path.read_bytes()
        try:
            n_units, n_channels, window = _core.baseline_state_shape(data)
            # Only the shape matters to read a state back; the scoring parameters do not.
            shape_only = BaselineParams(
                n_channels=n_channels,
                sigma_floor=(1.0,) * n_channels,
                stuck_run=(0,) * n_channels,
                scored=(0,),
                level_scale=(1.0,),
                spread_scale=(1.0,),
                baseline_samples=1,
                window=window,
            )
            # A v3 model's state (version 2 or 3) also holds each unit's context stage.
            context_shape = _core.baseline_state_context_shape(data)
            context = None if context_shape is None else ContextParams.shape_only(n_channels, *context_shape)
            stage = BaselineStage(shape_only, n_units, context)
            stage.load_state(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        out[int(m.group(1))] = _summaries(stage, now_s)
    return out
