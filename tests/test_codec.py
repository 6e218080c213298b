"""Telemetry/feedback codec: round trips, the documented byte layout, and bad-frame rejection."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from laserguard.wire import codec
from laserguard.wire.codec import FrameError
from wire_v2 import encode_telemetry_v2

BOOT = 0x5EED_B007_0000_0001  # boot id of the frames this file sends (one LCC start)


def frame_values(n_units: int = 4) -> np.ndarray:
    return np.arange(n_units * 11, dtype=np.float32).reshape(n_units, 11) * np.float32(0.25)


def sample_feedback(**overrides: object) -> bytes:
    args: dict[str, object] = {
        "lcc_id": 1,
        "boot_id": 2**64 - 1,
        "seq": 41,
        "timestamp_ns": 10**18,
        "model_version": "model-7",
        "scores": np.array([0.1, -0.2, 0.05], dtype=np.float32),
        "anomalous_units": np.array([1]),
        "top_features": np.array([[0, 3], [4, 5], [-1, -1]], dtype=np.int16),
        "top_weights": np.array([[0.5, 0.1], [0.9, 0.2], [0.0, 0.0]], dtype=np.float32),
    }
    args.update(overrides)
    return codec.encode_feedback(**args)  # type: ignore[arg-type]


def test_channels_are_the_design_names_in_order() -> None:
    assert codec.CHANNELS[0] == "drive_current_a"
    assert codec.CHANNELS[-1] == "psu_ripple_mv"
    assert len(codec.CHANNELS) == 11 and len(set(codec.CHANNELS)) == 11


def test_topics() -> None:
    assert codec.telemetry_topic(1) == b"lcc.1.telemetry"
    assert codec.feedback_topic(2) == b"lcc.2.anomaly"


def test_telemetry_header_matches_the_protocol_table() -> None:
    payload = codec.encode_telemetry(
        3,
        2**40 + 5,
        -7,
        frame_values(2),
        schema_id=1,
        boot_id=BOOT,
        setpoint_a=[8.0, 6.5],
        state=["on", "derated"],
    )
    header = struct.unpack_from("<4sHHIIQQqII", payload)
    magic, version, schema, lcc, reserved, boot, seq, ts, units, feats = header
    assert (magic, version, schema, lcc, reserved) == (b"LGTM", 3, 1, 3, 0)
    assert (codec.TELEMETRY_VERSION, codec.FEEDBACK_VERSION) == (3, 3)  # feedback 3: v3 explanation codes
    assert (boot, seq, ts, units, feats) == (BOOT, 2**40 + 5, -7, 2, 11)
    # values, then 2 setpoints at C = 48 + 88, 2 state bytes, 2 zero padding bytes
    c = 48 + 2 * 11 * 4
    assert len(payload) == c + 2 * 4 + 4
    assert np.array_equal(
        np.frombuffer(payload, dtype="<f4", count=22, offset=48).reshape(2, 11), frame_values(2)
    )
    assert struct.unpack_from("<2f4B", payload, c) == (8.0, 6.5, 2, 3, 0, 0)


@pytest.mark.parametrize("n_units", [1, 2, 3, 4, 5, 8])
def test_telemetry_size_follows_the_contract_formula(n_units: int) -> None:
    payload = codec.encode_telemetry(1, 0, 0, frame_values(n_units), boot_id=BOOT)
    assert len(payload) == 48 + 4 * n_units * 11 + 4 * n_units + ((n_units + 3) & ~3)


def test_unit_states_are_the_contract_names() -> None:
    assert codec.UNIT_STATES == ("off", "warming", "on", "derated")
    assert codec.UNIT_STATES[codec.STATE_ON] == "on"
    assert "bad_state" in codec.FRAME_ERROR_REASONS


def test_setpoint_and_state_round_trip_as_names_or_codes() -> None:
    setpoints = np.array([8.0, np.nan, 0.0, 6.25], dtype=np.float32)
    by_name = codec.encode_telemetry(
        1, 2, 3, frame_values(), boot_id=BOOT, setpoint_a=setpoints, state=["on", "warming", "off", "derated"]
    )
    by_code = codec.encode_telemetry(
        1,
        2,
        3,
        frame_values(),
        boot_id=BOOT,
        setpoint_a=setpoints.astype(np.float64),
        state=np.array([2, 1, 0, 3]),
    )
    assert by_name == by_code
    frame = codec.decode_telemetry(by_name)
    assert frame.setpoint_a.dtype == np.float32 and frame.setpoint_a.shape == (4,)
    assert frame.setpoint_a.tobytes() == setpoints.tobytes()  # NaN (unknown) carried bit-exactly
    assert frame.state.dtype == np.uint8 and frame.state.tolist() == [2, 1, 0, 3]
    assert [codec.UNIT_STATES[s] for s in frame.state] == ["on", "warming", "off", "derated"]


def test_without_context_an_encoder_sends_unknown_setpoints_and_on() -> None:
    frame = codec.decode_telemetry(codec.encode_telemetry(1, 2, 3, frame_values(3), boot_id=BOOT))
    assert np.isnan(frame.setpoint_a).all() and frame.setpoint_a.shape == (3,)
    assert frame.state.tolist() == [2, 2, 2]


def test_encoder_names_a_bad_state_or_setpoint() -> None:
    with pytest.raises(
        ValueError, match=r"unit 1 has state 'standby'; known states are off, warming, on, derated"
    ):
        codec.encode_telemetry(1, 2, 3, frame_values(2), boot_id=BOOT, state=["on", "standby"])
    with pytest.raises(ValueError, match=r"unit 0 has state code 4; valid codes are 0\.\.3"):
        codec.encode_telemetry(1, 2, 3, frame_values(2), boot_id=BOOT, state=[4, 2])
    with pytest.raises(ValueError, match="unit 1 has state code 9"):  # wire codes (uint8) are checked too
        codec.encode_telemetry(1, 2, 3, frame_values(2), boot_id=BOOT, state=np.array([3, 9], dtype=np.uint8))
    with pytest.raises(ValueError, match="unit 1 has state code -1"):
        codec.encode_telemetry(1, 2, 3, frame_values(2), boot_id=BOOT, state=[2, -1])
    with pytest.raises(ValueError, match=r"state must have one entry per unit \(2\), got shape \(3,\)"):
        codec.encode_telemetry(1, 2, 3, frame_values(2), boot_id=BOOT, state=["on"] * 3)
    with pytest.raises(ValueError, match=r"setpoint_a must have one entry per unit \(2\), got shape \(1,\)"):
        codec.encode_telemetry(1, 2, 3, frame_values(2), boot_id=BOOT, setpoint_a=[8.0])
    with pytest.raises(TypeError, match="setpoint_a must be real numbers"):
        codec.encode_telemetry(1, 2, 3, frame_values(2), boot_id=BOOT, setpoint_a=["8", "8"])


def test_feedback_header_carries_the_echoed_boot_and_seq() -> None:
    payload = sample_feedback()
    magic, version, n_features, lcc, n_units, boot, seq, ts = struct.unpack_from("<4sHHIIQQq", payload)
    assert (magic, version, n_features, lcc, n_units) == (b"LGAF", 3, 11, 1, 3)
    assert (boot, seq, ts) == (2**64 - 1, 41, 10**18)


def test_an_older_telemetry_frame_is_refused_with_a_clear_reason() -> None:
    v2 = encode_telemetry_v2(1, BOOT, 3, 4, frame_values())
    with pytest.raises(
        FrameError,
        match=r"telemetry frame version 2 is not supported.*reads version 3.*setpoint and state.*upgraded",
    ) as info:
        codec.decode_telemetry(v2)
    assert info.value.reason == "unknown_version"
    good = codec.encode_telemetry(1, 2, 3, frame_values(), boot_id=BOOT)
    old = good[:4] + struct.pack("<H", 1) + good[6:]
    with pytest.raises(FrameError, match=r"version 1 is not supported.*reads version 3.*boot ids") as info:
        codec.decode_telemetry(old)
    assert info.value.reason == "unknown_version"
    old_feedback = sample_feedback()
    old_feedback = old_feedback[:4] + struct.pack("<H", 1) + old_feedback[6:]
    with pytest.raises(FrameError, match="feedback version 1") as info:
        codec.decode_feedback(old_feedback)
    assert info.value.reason == "unknown_version"
    # Feedback 3 renumbered the explanation codes (v3 kinds): a version-2 answer is refused.
    v2_feedback = sample_feedback()
    v2_feedback = v2_feedback[:4] + struct.pack("<H", 2) + v2_feedback[6:]
    with pytest.raises(
        FrameError, match=r"feedback version 2 is not supported.*reads version 3.*engine v3"
    ) as info:
        codec.decode_feedback(v2_feedback)
    assert info.value.reason == "unknown_version"


@pytest.mark.parametrize("boot_id", [-1, 2**64])
def test_boot_id_outside_64_bits_is_refused(boot_id: int) -> None:
    with pytest.raises(ValueError, match=f"boot_id {boot_id} is outside"):
        codec.encode_telemetry(1, 2, 3, frame_values(), boot_id=boot_id)


def test_new_boot_ids_differ() -> None:
    ids = {codec.new_boot_id() for _ in range(100)}
    assert len(ids) == 100 and all(0 <= b < 2**64 for b in ids)


@settings(max_examples=60, deadline=None)
@given(
    values=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 70), st.just(11)),
        elements=st.floats(width=32, allow_nan=True, allow_infinity=True),
    ),
    lcc_id=st.integers(0, 2**32 - 1),
    seq=st.integers(0, 2**64 - 1),
    ts=st.integers(-(2**63), 2**63 - 1),
    data=st.data(),
)
def test_telemetry_round_trip_is_bit_exact(
    values: np.ndarray, lcc_id: int, seq: int, ts: int, data: st.DataObject
) -> None:
    n_units = values.shape[0]
    setpoints = data.draw(
        hnp.arrays(np.float32, n_units, elements=st.floats(width=32, allow_nan=True, allow_infinity=True))
    )
    states = data.draw(hnp.arrays(np.uint8, n_units, elements=st.integers(0, 3)))
    payload = codec.encode_telemetry(
        lcc_id, seq, ts, values, boot_id=BOOT, setpoint_a=setpoints, state=states
    )
    frame = codec.decode_telemetry(payload)
    assert (frame.lcc_id, frame.boot_id, frame.seq, frame.timestamp_ns, frame.schema_id) == (
        lcc_id,
        BOOT,
        seq,
        ts,
        1,
    )
    assert frame.values.dtype == np.float32 and frame.values.shape == values.shape
    assert frame.values.tobytes() == values.tobytes()  # NaN payloads included
    assert frame.setpoint_a.tobytes() == setpoints.tobytes()
    assert frame.state.tobytes() == states.tobytes()


def test_decode_accepts_memoryview_and_non_contiguous_input_is_encoded_correctly() -> None:
    wide = np.arange(4 * 22, dtype=np.float32).reshape(4, 22)
    strided = wide[:, ::2]
    payload = codec.encode_telemetry(1, 1, 1, strided, boot_id=BOOT)
    assert np.array_equal(codec.decode_telemetry(memoryview(payload)).values, strided)


def test_encoder_checks_dtype_and_shape() -> None:
    with pytest.raises(TypeError, match="float32, got float64"):
        codec.encode_telemetry(1, 1, 1, frame_values().astype(np.float64), boot_id=BOOT)
    with pytest.raises(ValueError, match="2-D"):
        codec.encode_telemetry(1, 1, 1, np.zeros(11, dtype=np.float32), boot_id=BOOT)
    with pytest.raises(ValueError, match="schema 1 has 11 channels, frame has 5"):
        codec.encode_telemetry(1, 1, 1, np.zeros((2, 5), dtype=np.float32), boot_id=BOOT)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b"XGTM" + b[4:], "bad_magic"),
        (lambda b: b[:4] + struct.pack("<H", 9) + b[6:], "unknown_version"),
        (lambda b: b[:20], "truncated"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b"", "truncated"),
        (lambda b: b + b"\0", "count_mismatch"),
        (lambda b: b[:40] + struct.pack("<I", 100_000) + b[44:], "oversized"),
        (lambda b: b[:44] + struct.pack("<I", 10) + b[48:], "schema_mismatch"),
        (lambda b: b[:12] + struct.pack("<I", 1) + b[16:], "bad_header"),
        # 4 units: the state bytes are the last 4 (no padding); a 5th code is not a state
        (lambda b: b[:-1] + b"\x04", "bad_state"),
        (lambda b: b[:-4] + b"\xff" + b[-3:], "bad_state"),
    ],
)
def test_bad_telemetry_is_rejected_with_its_reason(mutate: object, reason: str) -> None:
    # ``good`` has 4 units, so the frame ends with their 4 state bytes.
    good = codec.encode_telemetry(1, 2, 3, frame_values(), boot_id=BOOT)
    with pytest.raises(FrameError) as info:
        codec.decode_telemetry(mutate(good))  # type: ignore[operator]
    assert info.value.reason == reason
    assert reason in codec.FRAME_ERROR_REASONS
    assert isinstance(info.value, ValueError)
    assert reason in str(info.value)


def test_state_padding_must_be_zero() -> None:
    good = codec.encode_telemetry(1, 2, 3, frame_values(3), boot_id=BOOT, state=["on", "off", "warming"])
    assert good[-4:] == b"\x02\x00\x01\x00"  # 3 states, 1 padding byte
    with pytest.raises(FrameError, match="padding byte at offset") as info:
        codec.decode_telemetry(good[:-1] + b"\x01")
    assert info.value.reason == "bad_header"
    with pytest.raises(FrameError, match="unit 2 has state code 7") as info:
        codec.decode_telemetry(good[:-2] + b"\x07\x00")
    assert info.value.reason == "bad_state"


def test_feedback_round_trip() -> None:
    fb = codec.decode_feedback(sample_feedback())
    assert (fb.lcc_id, fb.boot_id, fb.seq, fb.timestamp_ns, fb.model_version, fb.n_features) == (
        1,
        2**64 - 1,
        41,
        10**18,
        "model-7",
        11,
    )
    assert fb.anomalous_units.tolist() == [1]
    assert fb.scores.tolist() == pytest.approx([0.1, -0.2, 0.05])
    assert fb.top_features.tolist() == [[0, 3], [4, 5], [-1, -1]]
    assert fb.top_weights.dtype == np.float32 and fb.top_weights.shape == (3, 2)


def test_feedback_with_no_anomalies_and_k_zero() -> None:
    payload = sample_feedback(
        anomalous_units=np.array([], dtype=np.int64),
        top_features=np.zeros((3, 0), dtype=np.int16),
        top_weights=np.zeros((3, 0), dtype=np.float32),
        model_version="",
    )
    fb = codec.decode_feedback(payload)
    assert fb.anomalous_units.size == 0 and fb.top_features.shape == (3, 0) and fb.model_version == ""


def test_feedback_encoder_names_bad_arguments() -> None:
    with pytest.raises(ValueError, match="anomalous unit 3 is outside"):
        sample_feedback(anomalous_units=np.array([3]))
    with pytest.raises(ValueError, match="strictly increasing"):
        sample_feedback(anomalous_units=np.array([2, 1]))
    # Explanation codes: 11 forest features, then 7 unit-stage kinds per channel (feedback 3).
    with pytest.raises(ValueError, match=r"top feature 88 of unit 0 is outside \[-1, 88\)"):
        sample_feedback(top_features=np.array([[0, 88], [4, 5], [-1, -1]], dtype=np.int16))
    assert (
        codec.decode_feedback(
            sample_feedback(top_features=np.array([[0, 87], [4, 5], [-1, -1]], dtype=np.int16))
        ).top_features[0, 1]
        == 87
    )
    with pytest.raises(ValueError, match="printable ASCII"):
        sample_feedback(model_version="m\n")
    with pytest.raises(TypeError, match="int16"):
        sample_feedback(top_features=np.zeros((3, 2), dtype=np.int32))


@pytest.mark.parametrize(
    ("offset", "patch", "reason"),
    [
        (0, b"LGTM", "bad_magic"),
        (48 + 8, struct.pack("<I", 7), "bad_index"),  # anomalous unit 7 of 3
        (48, b"\x01", "bad_string"),
        (55, b"!", "bad_header"),  # padding after the 7-byte model version
        (40, struct.pack("<I", 9), "count_mismatch"),
        (44, struct.pack("<H", 65), "oversized"),
    ],
)
def test_bad_feedback_is_rejected_with_its_reason(offset: int, patch: bytes, reason: str) -> None:
    good = sample_feedback()
    bad = good[:offset] + patch + good[offset + len(patch) :]
    with pytest.raises(FrameError) as info:
        codec.decode_feedback(bad)
    assert info.value.reason == reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_a_decoder(data: bytes) -> None:
    for decode in (codec.decode_telemetry, codec.decode_feedback):
        try:
            decode(data)
        except FrameError as exc:
            assert exc.reason in codec.FRAME_ERROR_REASONS


def test_round_trip_through_real_zmq_sockets() -> None:
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    sub = ctx.socket(zmq.SUB)
    try:
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        sub.connect(f"tcp://127.0.0.1:{port}")
        sub.setsockopt(zmq.SUBSCRIBE, codec.telemetry_topic(5))
        sub.setsockopt(zmq.RCVTIMEO, 100)
        payload = codec.encode_telemetry(5, 1, 2, frame_values(), boot_id=BOOT)
        # PUB/SUB late joiner: keep publishing until the subscription has propagated.
        for _ in range(100):
            pub.send_multipart([codec.telemetry_topic(5), payload])
            try:
                topic, received = sub.recv_multipart(copy=False)
                break
            except zmq.Again:
                continue
        else:
            pytest.fail("no frame arrived over ZMQ within 100 attempts")
        assert topic.bytes == b"lcc.5.telemetry"
        frame = codec.decode_telemetry(received.buffer)  # zmq.Frame buffer, no bytes copy
        assert np.array_equal(frame.values, frame_values())
    finally:
        sub.close(0)
        pub.close(0)
        ctx.term()
