"""The .lgf model file: export refusals, corrupt/foreign files, atomic writes, input checks."""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest, RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from laserguard import ForestModel, ModelFormatError, export_model, hash_training_data

HEADER = struct.Struct("<8sHHIQII")  # magic, major, minor, header size, payload size, crc32, reserved
N_FEATURES = 4


@pytest.fixture(scope="module")
def train() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(200, N_FEATURES))


@pytest.fixture(scope="module")
def pipeline(train: np.ndarray) -> Pipeline:
    return make_pipeline(
        StandardScaler(), IsolationForest(n_estimators=7, max_samples=64, random_state=1)
    ).fit(train)


@pytest.fixture(scope="module")
def model_bytes(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("model") / "m.lgf"
    export_model(pipeline, path, feature_names=["a", "b", "c", "d"])
    return path.read_bytes()


def seal(payload: bytes, major: int = 1, minor: int = 0) -> bytes:
    """A file around `payload` with a correct header and checksum (to reach the semantic checks)."""
    head = HEADER.pack(b"LGFOREST", major, minor, HEADER.size, len(payload), 0, 0)
    crc = zlib.crc32(payload, zlib.crc32(head[:24]))
    return HEADER.pack(b"LGFOREST", major, minor, HEADER.size, len(payload), crc, 0) + payload


def payload_of(data: bytes) -> bytearray:
    return bytearray(data[HEADER.size :])


class PayloadLayout:
    """Byte offsets of the fields of a v1.0 payload (docs/model-format.md), for targeted corruption."""

    def __init__(self, payload: bytes) -> None:
        self.n_features, self.n_trees = struct.unpack_from("<II", payload, 0)
        has_scaler = payload[8]
        self.offset_field = 12
        pos = 28
        self.scale_field = pos + 8 * self.n_features if has_scaler else -1
        if has_scaler:
            pos += 16 * self.n_features
        for _ in range(self.n_features):
            (length,) = struct.unpack_from("<I", payload, pos)
            pos += 4 + length
        self.metadata = pos  # u32 length + UTF-8 JSON
        (length,) = struct.unpack_from("<I", payload, pos)
        pos += 4 + length
        self.first_tree = pos
        (n,) = struct.unpack_from("<I", payload, pos)
        self.first_tree_nodes = n
        self.left = pos + 4
        self.right = self.left + 4 * n
        self.feature = self.right + 4 * n
        self.threshold = self.feature + 4 * n
        self.missing = self.threshold + 8 * n
        self.value = self.missing + n
        lefts = struct.unpack_from(f"<{n}i", payload, self.left)
        self.first_leaf = lefts.index(-1)


def expect_format_error(data: bytes, match: str | None = None) -> ModelFormatError:
    with pytest.raises(ModelFormatError, match=match) as info:
        ForestModel.from_bytes(data)
    return info.value


# ---------------------------------------------------------------- export refusals


def test_unfitted_estimators_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError, match="IsolationForest instance is not fitted"):
        export_model(IsolationForest(), tmp_path / "m.lgf")
    with pytest.raises(NotFittedError, match="not fitted"):
        export_model(make_pipeline(StandardScaler(), IsolationForest()), tmp_path / "m.lgf")
    assert list(tmp_path.iterdir()) == []
    assert issubclass(NotFittedError, ValueError)


def test_half_fitted_pipeline_is_refused(train: np.ndarray, tmp_path: Path) -> None:
    forest = IsolationForest(n_estimators=3, random_state=0).fit(train)
    with pytest.raises(NotFittedError, match="StandardScaler"):
        export_model(Pipeline([("scaler", StandardScaler()), ("model", forest)]), tmp_path / "m.lgf")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "estimator",
    [LinearRegression(), RandomForestClassifier(), None, {"model": "iforest"}, "model.skops", 3.5],
    ids=lambda e: type(e).__name__,
)
def test_wrong_types_are_refused(estimator: Any, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=f"cannot export {type(estimator).__name__}"):
        export_model(estimator, tmp_path / "m.lgf")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("steps", "named"),
    [
        ([MinMaxScaler(), IsolationForest()], "MinMaxScaler"),
        ([StandardScaler(), PCA(), IsolationForest()], "PCA"),
        ([StandardScaler(), StandardScaler(), IsolationForest()], "StandardScaler"),
        ([IsolationForest(), StandardScaler()], "IsolationForest"),
        ([StandardScaler()], "StandardScaler"),
    ],
)
def test_pipelines_with_other_steps_are_refused(steps: list[Any], named: str, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=f"unsupported Pipeline steps .*{named}"):
        export_model(make_pipeline(*steps), tmp_path / "m.lgf")
    assert list(tmp_path.iterdir()) == []


def mean_score(estimator: Any, X: np.ndarray, y: Any = None) -> float:
    return float(estimator.score_samples(X).mean())


def test_grid_search_best_estimator_is_accepted_but_not_the_search(train: np.ndarray, tmp_path: Path) -> None:
    search = GridSearchCV(
        make_pipeline(StandardScaler(), IsolationForest(n_estimators=5, random_state=0)),
        {"isolationforest__max_features": [0.5, 1.0], "isolationforest__max_samples": ["auto", 0.8]},
        scoring=mean_score,
        cv=2,
    ).fit(train)
    with pytest.raises(TypeError, match="cannot export GridSearchCV"):
        export_model(search, tmp_path / "search.lgf")
    export_model(search.best_estimator_, tmp_path / "best.lgf")
    model = ForestModel.load(tmp_path / "best.lgf")
    np.testing.assert_array_equal(
        model.decision_function(train), search.best_estimator_.decision_function(train)
    )


def test_wrong_feature_names_length_is_refused(pipeline: Pipeline, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="feature_names has 3 entries, the model has 4 features"):
        export_model(pipeline, tmp_path / "m.lgf", feature_names=["a", "b", "c"])
    assert list(tmp_path.iterdir()) == []


def test_feature_names_as_one_string_is_refused(pipeline: Pipeline, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="got the string 'abcd'"):
        export_model(pipeline, tmp_path / "m.lgf", feature_names="abcd")
    assert list(tmp_path.iterdir()) == []


def test_scaler_and_forest_feature_counts_must_agree(train: np.ndarray, tmp_path: Path) -> None:
    scaler = StandardScaler().fit(train[:, :3])
    forest = IsolationForest(n_estimators=2, random_state=0).fit(train)
    with pytest.raises(ValueError, match="scaler has 3 features but the forest has 4"):
        export_model(Pipeline([("s", scaler), ("f", forest)]), tmp_path / "m.lgf")


def test_metadata_and_feature_names_round_trip(train: np.ndarray, tmp_path: Path) -> None:
    frame = pd.DataFrame(train, columns=["power", "temp", "current", "volt"])
    est = make_pipeline(StandardScaler(), IsolationForest(n_estimators=4, contamination=0.1, random_state=2))
    est.fit(frame)
    digest = hash_training_data(train)
    version = export_model(est, tmp_path / "m.lgf", training_data_sha256=digest)
    model = ForestModel.load(tmp_path / "m.lgf")
    assert model.feature_names == ("power", "temp", "current", "volt")
    assert (model.n_features, model.n_trees) == (4, 4)
    assert model.version == version
    meta = model.metadata
    assert meta["training_data_sha256"] == digest
    assert meta["params"]["contamination"] == 0.1
    assert meta["has_scaler"] is True
    assert model.offset == est[-1].offset_
    # The version names the content: same model -> same version, other model -> another.
    assert export_model(est, tmp_path / "again.lgf", training_data_sha256=digest) == version
    other = IsolationForest(n_estimators=4, random_state=3).fit(train)
    assert export_model(other, tmp_path / "other.lgf") != version


# ---------------------------------------------------------------- corrupt and foreign files


def test_model_format_error_is_a_value_error() -> None:
    assert issubclass(ModelFormatError, ValueError)


def test_the_fixture_file_itself_loads(model_bytes: bytes) -> None:
    model = ForestModel.from_bytes(model_bytes)
    assert model.n_trees == 7 and model.feature_names == ("a", "b", "c", "d")
    assert ForestModel.from_bytes(seal(payload_of(model_bytes))).n_trees == 7  # seal() matches the writer


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.lgf").write_bytes(b"")
    with pytest.raises(ModelFormatError, match="truncated: 0 bytes"):
        ForestModel.load(tmp_path / "empty.lgf")


def test_truncated_at_every_length(model_bytes: bytes) -> None:
    # Every prefix of the header and first kilobyte, then every 7th length to the end.
    lengths = [*range(0, 1024), *range(1024, len(model_bytes), 7)]
    for n in lengths:
        expect_format_error(model_bytes[:n], match="truncated")


def test_truncated_payload_with_a_matching_header(model_bytes: bytes) -> None:
    """A header rewritten to match a cut payload: the reader must still notice every cut."""
    payload = payload_of(model_bytes)
    for n in range(0, len(payload), 3):
        err = expect_format_error(seal(payload[:n]))
        assert "truncated" in str(err) or "impossible" in str(err), str(err)


def test_every_header_bit_flip_is_refused(model_bytes: bytes) -> None:
    for bit in range(8 * HEADER.size):
        data = bytearray(model_bytes)
        data[bit // 8] ^= 1 << (bit % 8)
        expect_format_error(bytes(data))


def test_payload_bit_flips_are_caught_by_the_checksum(model_bytes: bytes) -> None:
    rng = np.random.default_rng(0)
    for bit in rng.choice(8 * (len(model_bytes) - HEADER.size), 400, replace=False):
        data = bytearray(model_bytes)
        data[HEADER.size + bit // 8] ^= 1 << (bit % 8)
        expect_format_error(bytes(data), match="corrupt: CRC-32")


def test_resealed_random_corruption_never_crashes(model_bytes: bytes) -> None:
    """Corruptions that keep a valid checksum reach the structural validator: either a clean
    ModelFormatError, or a file that is still a sound forest and scores without error."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(16, N_FEATURES))
    refused = 0
    for _ in range(1500):
        payload = payload_of(model_bytes)
        for pos in rng.integers(0, len(payload), rng.integers(1, 4)):
            payload[pos] = int(rng.integers(0, 256))
        try:
            model = ForestModel.from_bytes(seal(payload))
        except ModelFormatError:
            refused += 1
            continue
        with np.errstate(over="ignore"):  # a corrupted denominator may overflow 2**x: allowed
            scores = model.decision_function(X)
        assert scores.shape == (16,)
    assert refused > 100  # the validator really is exercised


def test_wrong_magic(model_bytes: bytes) -> None:
    expect_format_error(b"LGFORESX" + model_bytes[8:], match="bad magic")


@pytest.mark.parametrize(("major", "minor"), [(3, 0), (0, 9), (65535, 0)])
def test_wrong_major_version(model_bytes: bytes, major: int, minor: int) -> None:
    expect_format_error(
        seal(payload_of(model_bytes), major, minor), match=f"unsupported .*version {major}.{minor}"
    )


def test_forest_only_payload_labelled_2_0_is_refused(model_bytes: bytes) -> None:
    # Format 2.0 must carry the baseline stage after the last tree.
    expect_format_error(seal(payload_of(model_bytes), 2, 0), match="truncated.*baseline n_channels")


def test_newer_minor_version_may_append_fields(model_bytes: bytes) -> None:
    appended = payload_of(model_bytes) + b"future fields"
    assert ForestModel.from_bytes(seal(appended, minor=1)).n_trees == 7
    expect_format_error(seal(appended, minor=0), match="13 unexpected bytes after the last tree")


def foreign_files(pipeline: Pipeline, tmp_path: Path) -> dict[str, bytes]:
    import skops.io as sio

    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("X.npy", b"\x93NUMPY")
    npy = io.BytesIO()
    np.save(npy, np.zeros((3, 4)))
    sio.dump(pipeline, tmp_path / "m.skops")
    return {
        "png": b"\x89PNG\r\n\x1a\n" + bytes(200),
        "zip": zipped.getvalue(),
        "npy": npy.getvalue(),
        "skops": (tmp_path / "m.skops").read_bytes(),
        "text": b"power,temp,current,volt\n1,2,3,4\n" * 4,
    }


def test_foreign_files_are_refused(pipeline: Pipeline, tmp_path: Path) -> None:
    for name, data in foreign_files(pipeline, tmp_path).items():
        path = tmp_path / f"{name}.lgf"
        path.write_bytes(data)
        with pytest.raises(ModelFormatError, match="not a laserguard model file: bad magic") as info:
            ForestModel.load(path)
        assert str(path) in str(info.value), name


def test_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match=re.escape("no-such.lgf")):
        ForestModel.load("/nonexistent/no-such.lgf")


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("n_features", struct.pack("<I", 0), "n_features must be in"),
        ("n_trees", struct.pack("<I", 0), "tree count 0 impossible"),
        ("n_trees", struct.pack("<I", 2**32 - 1), "tree count 4294967295 impossible"),
        ("offset", struct.pack("<d", float("nan")), "offset is not finite"),
        ("scale", struct.pack("<d", 0.0), "scale of feature 0 must be finite and > 0"),
        ("left", struct.pack("<i", 10**6), "child index out of range"),
        ("left", struct.pack("<i", 0), "not after parent"),
        ("feature", struct.pack("<i", N_FEATURES), "feature index 4 outside"),
        ("threshold", struct.pack("<d", float("nan")), "threshold is NaN"),
        ("missing", b"\x02", "missing_go_left must be 0 or 1"),
        ("leaf_value", struct.pack("<d", float("inf")), "leaf value is not finite"),
        ("node_count", struct.pack("<I", 2**31), "truncated"),
    ],
)
def test_structural_errors_with_valid_checksum(
    model_bytes: bytes, field: str, value: bytes, match: str
) -> None:
    payload = payload_of(model_bytes)
    layout = PayloadLayout(bytes(payload))
    at = {
        "n_features": 0,
        "n_trees": 4,
        "offset": layout.offset_field,
        "scale": layout.scale_field,
        "left": layout.left,
        "feature": layout.feature,
        "threshold": layout.threshold,
        "missing": layout.missing,
        "leaf_value": layout.value + 8 * layout.first_leaf,
        "node_count": layout.first_tree,
    }[field]
    payload[at : at + len(value)] = value
    expect_format_error(seal(payload), match=match)


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        (b'{"a": "\xff\xfe"}', "not valid UTF-8 JSON"),
        (b'{"unterminated": ', "not valid UTF-8 JSON"),
        (b"[1, 2, 3]", "metadata must be a JSON object, got list"),
    ],
)
def test_bad_metadata_is_a_format_error(
    model_bytes: bytes, tmp_path: Path, metadata: bytes, match: str
) -> None:
    payload = payload_of(model_bytes)
    at = PayloadLayout(bytes(payload)).metadata
    (length,) = struct.unpack_from("<I", payload, at)
    patched = payload[:at] + struct.pack("<I", len(metadata)) + metadata + payload[at + 4 + length :]
    expect_format_error(seal(patched), match=match)
    path = tmp_path / "bad-metadata.lgf"
    path.write_bytes(seal(patched))
    with pytest.raises(ModelFormatError, match=re.escape(str(path))):
        ForestModel.load(path)


def test_feature_names_must_be_utf8(model_bytes: bytes) -> None:
    payload = payload_of(model_bytes)
    layout = PayloadLayout(bytes(payload))
    first_name = layout.metadata - sum(4 + len(n) for n in "abcd")  # names are "a".."d"
    assert payload[first_name + 4 : first_name + 5] == b"a"
    payload[first_name + 4] = 0xFF
    expect_format_error(seal(payload), match="not valid UTF-8")


# ---------------------------------------------------------------- atomic writes


def test_export_leaves_no_temp_file(pipeline: Pipeline, tmp_path: Path) -> None:
    export_model(pipeline, tmp_path / "m.lgf")
    export_model(pipeline, tmp_path / "m.lgf")
    assert [p.name for p in tmp_path.iterdir()] == ["m.lgf"]


def test_existing_file_is_replaced_by_rename(pipeline: Pipeline, train: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "m.lgf"
    export_model(pipeline, path)
    before = os.stat(path).st_ino
    other = IsolationForest(n_estimators=3, random_state=9).fit(train)
    export_model(other, path)
    # A new inode: the old file was never rewritten in place.
    assert os.stat(path).st_ino != before
    assert ForestModel.load(path).n_trees == 3


FAILING_WRITE = """
import resource, signal, sys
import numpy as np
from sklearn.ensemble import IsolationForest
from laserguard import export_model

forest = IsolationForest(n_estimators=50, random_state=0).fit(np.random.default_rng(0).normal(size=(300, 4)))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # make the write fail with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    export_model(forest, sys.argv[1])
except Exception as exc:
    print(type(exc).__name__, exc)
    sys.exit(3)
"""


def test_failed_write_keeps_the_existing_file(pipeline: Pipeline, tmp_path: Path) -> None:
    """A write that fails part way (file size limit) leaves the old model and no temp file."""
    path = tmp_path / "m.lgf"
    export_model(pipeline, path)
    original = path.read_bytes()
    result = subprocess.run(
        [sys.executable, "-c", FAILING_WRITE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert str(path) in result.stdout  # the error names the file
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["m.lgf"]


def test_readers_never_see_a_partial_file(pipeline: Pipeline, train: np.ndarray, tmp_path: Path) -> None:
    """One thread re-exports two different models over the same path; another keeps loading it."""
    path = tmp_path / "m.lgf"
    small = IsolationForest(n_estimators=2, max_samples=16, random_state=0).fit(train)
    export_model(small, path)
    seen: set[int] = set()
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                seen.add(ForestModel.load(path).n_trees)
            except BaseException as exc:
                errors.append(exc)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(60):
            export_model(pipeline if i % 2 else small, path)
    finally:
        done.set()
        reader.join()
    assert errors == []
    assert seen <= {2, 7} and seen


# ---------------------------------------------------------------- input checks


@pytest.fixture(scope="module")
def model(model_bytes: bytes) -> ForestModel:
    return ForestModel.from_bytes(model_bytes)


@pytest.mark.parametrize("n_columns", [1, 3, 5, 40])
def test_wrong_feature_count_names_expected_and_actual(model: ForestModel, n_columns: int) -> None:
    X = np.zeros((2, n_columns))
    for method in (
        model.decision_function,
        model.score_samples,
        model.predict,
        model.decision_function_native,
    ):
        with pytest.raises(ValueError, match=f"X has {n_columns} features, but the model expects 4"):
            method(X)


@pytest.mark.parametrize("shape", [(4,), (2, 2, 4), ()])
def test_wrong_dimensions(model: ForestModel, pipeline: Pipeline, shape: tuple[int, ...]) -> None:
    X = np.zeros(shape)
    with pytest.raises(ValueError, match=f"2-D array .* got {len(shape)}-D"):
        model.decision_function(X)
    with pytest.raises(ValueError):
        pipeline.decision_function(X)


def test_zero_rows(model: ForestModel, pipeline: Pipeline) -> None:
    X = np.zeros((0, N_FEATURES))
    with pytest.raises(ValueError, match=r"0 sample\(s\) \(shape=\(0, 4\)\)"):
        model.decision_function(X)
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        pipeline.decision_function(X)


def test_non_float_inputs_follow_sklearn(model: ForestModel, pipeline: Pipeline) -> None:
    ints = np.arange(12, dtype=np.int64).reshape(3, 4)
    np.testing.assert_array_equal(model.decision_function(ints), pipeline.decision_function(ints))
    nested = ints.tolist()
    np.testing.assert_array_equal(model.decision_function(nested), pipeline.decision_function(nested))
    with pytest.raises(ValueError):
        model.decision_function([["a", "b", "c", "d"]])


def test_float16_follows_sklearn_or_is_refused_clearly(
    model: ForestModel, pipeline: Pipeline, train: np.ndarray, tmp_path: Path
) -> None:
    """Without a scaler float16 is cast to float32 as sklearn does; with one, sklearn would scale
    in float16 arithmetic, which the C++ core does not do: a clear TypeError instead."""
    X16 = train[:20].astype(np.float16)
    with pytest.raises(TypeError, match="float16 input is not supported with a scaler"):
        model.decision_function(X16)
    forest = IsolationForest(n_estimators=5, random_state=0).fit(train)
    export_model(forest, tmp_path / "plain.lgf")
    plain = ForestModel.load(tmp_path / "plain.lgf")
    np.testing.assert_array_equal(plain.decision_function(X16), forest.decision_function(X16))


def test_sparse_input_is_refused_clearly(model: ForestModel, train: np.ndarray) -> None:
    with pytest.raises(TypeError, match="sparse input \\(csr_matrix\\) is not supported"):
        model.decision_function(scipy.sparse.csr_matrix(train[:5]))


def odd_inputs() -> dict[str, Any]:
    X = np.random.default_rng(8).normal(size=(6, N_FEATURES))
    nullable = pd.DataFrame(X, columns=list("abcd")).astype("Float64")
    nullable.iloc[1, 2] = pd.NA
    return {
        "complex": X.astype(complex) + 1j,
        "complex_zero_imag": X.astype(complex),
        "numeric_strings": X.astype(str),
        "bad_strings": np.array([["a", "1", "2", "3"]]),
        "bool": X > 0,
        "object_with_none": np.array([[None, 1.0, 2.0, 3.0]], dtype=object),
        "int8": (X * 10).astype(np.int8),
        "uint64_huge": np.full((2, N_FEATURES), 2**64 - 1, dtype=np.uint64),
        "pandas_nullable_with_na": nullable,
        "pandas_int64_nullable": pd.DataFrame((X * 100).astype(int), columns=list("abcd")).astype("Int64"),
        "pandas_mixed_bool": pd.DataFrame({"a": X[:, 0] > 0, "b": X[:, 1], "c": X[:, 2], "d": X[:, 3]}),
        "ragged_list": [[1.0, 2.0, 3.0, 4.0], [1.0]],
        "zero_features": np.zeros((3, 0)),
        "scalar": 3.0,
    }


@pytest.mark.filterwarnings("ignore:X has feature names")
@pytest.mark.parametrize("name", list(odd_inputs()))
@pytest.mark.parametrize("with_scaler", [True, False], ids=["scaler", "plain"])
def test_odd_inputs_behave_as_in_sklearn(
    name: str, with_scaler: bool, pipeline: Pipeline, tmp_path: Path
) -> None:
    """Non-float inputs: the same values as sklearn, or the same exception type."""
    estimator = pipeline if with_scaler else pipeline[-1]
    export_model(estimator, tmp_path / "m.lgf")
    model = ForestModel.load(tmp_path / "m.lgf")
    X = odd_inputs()[name]
    try:
        expected = estimator.decision_function(X)
    except Exception as exc:
        with pytest.raises(type(exc)):
            model.decision_function(X)
        return
    np.testing.assert_array_equal(model.decision_function(X), expected)
