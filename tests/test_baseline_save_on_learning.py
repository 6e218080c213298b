"""detect saves an LCC's baselines when its units finish learning, without waiting for the
periodic save: each LCC on its own, in a gap between frames (real processes and sockets)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np

from detect_support import BOOT, FakeLcc, connect, sim_frames, start_detect
from laserguard.live.baseline_store import read_saved_baselines
from laserguard.wire import codec
from service_support import labelled_metric, wait_for

SETPOINT = np.full(32, 8.0, dtype=np.float32)
LCCS = (1, 2)


def test_each_lcc_is_saved_once_its_units_have_learned_long_before_the_periodic_save(
    lcc: FakeLcc, tmp_path: Path
) -> None:
    frames = sim_frames(80, seed=11)
    # No periodic save within the test: only the save after learning can write the files.
    detect = start_detect(
        lcc.telemetry_endpoint, lcc.feedback_endpoint, tmp_path, extra=("--baseline-save-s", "3600")
    )
    state_dir = tmp_path / "baselines"
    try:
        seq = connect(lcc, frames[0], lambda s: 1_000_000_000 * (s + 1), setpoint_a=SETPOINT)
        for i in range(1, 70):  # learning ends after 50 rows
            for lcc_id in LCCS:
                stamp = 1_000_000_000 * (seq + 1)
                payload = codec.encode_telemetry(
                    lcc_id, seq, stamp, frames[i], boot_id=BOOT, setpoint_a=SETPOINT
                )
                lcc.send(payload, lcc_id)
                feedback = lcc.receive(5000)
                assert feedback is not None and (feedback.lcc_id, feedback.seq) == (lcc_id, seq)
            seq += 1
        for lcc_id in LCCS:
            wait_for(
                lambda lcc_id=lcc_id: (
                    labelled_metric(  # type: ignore[misc]
                        detect.metrics_port, "laserguard_detect_units_learning", "lcc", str(lcc_id)
                    )
                    == 0
                ),
                10,
                f"LCC {lcc_id} learned",
            )

        def both_saved_ready() -> bool:
            try:
                saved = read_saved_baselines(state_dir, time.time())
            except ValueError:
                return False
            return all(lcc_id in saved and {u.phase for u in saved[lcc_id]} == {"ready"} for lcc_id in LCCS)

        wait_for(both_saved_ready, 10, "both LCCs' learned baselines saved")
    finally:
        # kill -9: nothing is saved on the way out, so the files are the ones written while running.
        detect.process.send_signal(signal.SIGKILL)
        detect.process.wait(10)
    saved = read_saved_baselines(state_dir, time.time())
    assert sorted(saved) == list(LCCS)
    assert all([u.phase for u in saved[lcc_id]] == ["ready"] * 32 for lcc_id in LCCS)
