"""The command blocks of README.md and of the docs a user is told to run, as tests/test_readme.py runs them.

Blocks are read from the files at collection time, so an edited flag or a new block is tested
as it now reads. What the test may change is listed here, each entry with its reason, and is
matched against the text: an entry that no longer matches anything fails the test (a rule
must not outlive the text it was written for).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Which files, which fences, and why (docs not listed hold no command a user is told to run).
SOURCES: dict[str, tuple[tuple[str, ...], str]] = {
    "README.md": (("bash", "python"), "every shell and Python block, in order"),
    "docs/operations.md": (("bash",), "the operator's commands: Prometheus, Grafana, scaling"),
    "docs/simulator.md": (
        ("python", ""),
        "the Python example and the untagged command blocks (laserguard simulate, lcc-sim)",
    ),
}
# Not tested, and why:
#   docs/architecture.md  - one untagged block: an ASCII diagram, not a command.
#   docs/data-contracts.md - one untagged block: the list of channel names.
#   docs/raw-format.md    - one untagged block: a sample raw log file.
#   docs/training.md      - one untagged block: the usage synopsis with [optional] brackets.
#   docs/protocol.md      - a Python API synopsis (names such as lcc_id and values are not defined).
#   docs/benchmarks.md    - how the reliability benchmarks were run (chaos 5 min, soak 10 min):
#                           measurements, not setup; far beyond the CI budget.
#   detection.md, model-format.md, storage.md - no fenced blocks.
# Untagged fences in docs/simulator.md that are not commands (the faults JSON) are left out by
# COMMAND_START below.
COMMAND_START = re.compile(r"^(laserguard|lcc-sim|python|from |import )")


@dataclass(frozen=True)
class Skip:
    """A command (or, with whole_block, its block) that is not run, with the reason."""

    match: str
    reason: str
    whole_block: bool = False


@dataclass(frozen=True)
class Substitute:
    """A documented flag value shortened for CI: ``old`` -> ``new`` inside commands containing ``match``."""

    match: str
    old: str
    new: str
    reason: str


@dataclass(frozen=True)
class Serve:
    """A command that serves until Ctrl-C: run it until ``ready_url`` answers, then SIGINT it."""

    match: str
    ready_url: str
    reason: str


@dataclass(frozen=True)
class Prepare:
    """Inputs a block names but no earlier block makes: ``files`` maps the name used to its source
    (a file an earlier block made) and a model card whose ``data.feature_names`` select the CSV's
    columns (None: the whole file)."""

    match: str
    files: dict[str, tuple[str, str | None]]
    reason: str


@dataclass(frozen=True)
class Repeat:
    """A block run ``times`` times back to back; commands containing ``last_only`` only in the last run."""

    match: str
    times: int
    last_only: str
    reason: str


SKIPS = (
    Skip(
        "./scripts/demo.sh",
        "README's setup: 1. installs system packages, rebuilds the package into .venv (minutes) and "
        "runs the live loop (that is tests/test_demo.py); 2. is the command CI runs, this test among "
        "its tests (it would run itself)",
        whole_block=True,
    ),
    Skip(
        "cmake -S . -B build-asan",
        "the C++ build under ASan + UBSan: .ci/run runs exactly these commands before the Python tests",
        whole_block=True,
    ),
    Skip(
        "laserguard demo --duration-s 300 &",
        "the live loop for 300 s beside a probe that serves until Ctrl-C on fixed ports; the same "
        "components are tested by tests/test_demo.py and tests/test_roundtrip.py",
        whole_block=True,
    ),
    Skip(
        "export GF_SECURITY_ADMIN_USER",
        "needs Grafana (not installed by CI) and an admin password ('...' in the text); the "
        "provisioning files are checked by tests/test_grafana_provisioning.py",
        whole_block=True,
    ),
    Skip(
        "docker run --rm --network host",
        "needs Docker and pulls the Grafana image from the network",
        whole_block=True,
    ),
    Skip(
        'laserguard store --mongo-uri "$URI"',
        "two stores on a real MongoDB ($URI is the operator's) with spools in /var/lib, serving until "
        "stopped; tests/test_reliability.py runs two stores on one database",
        whole_block=True,
    ),
    Skip(
        "laserguard dashboard --bind 0.0.0.0",
        "reads a token from /etc/laserguard and listens on every interface; the token rule and the "
        "refusal without one are tested in tests/test_dashboard_hostile.py",
        whole_block=True,
    ),
    Skip(
        "# host A: LCCs 1-2",
        "two hosts side by side (two columns of commands), pointing at hosts lcc-a and lcc-b",
        whole_block=True,
    ),
    Skip(
        "lcc-sim --faults faults.json --wait-for-subscriber 30",
        "waits 30 s for a detector and reads faults.json, which the page shows only as an example",
    ),
    Skip(
        "lcc-sim --profile lab --schedule scenario.json",
        "reads scenario.json, which the page describes only as a format, and runs until Ctrl-C",
    ),
)

SUBSTITUTIONS = (
    Substitute(
        "laserguard simulate --hours 0.5 --out sim --raw-out raw",
        "--hours 0.5",
        "--hours 0.05",
        "train's grid search (81 candidates x 3 folds) on 0.5 h takes 2.5-3 min on the 2-core "
        "EPYC; on 0.05 h (11.5k rows) ~40 s: the same commands on fewer rows",
    ),
    Substitute(
        "laserguard simulate --hours 0.1 --out rec/",
        "--hours 0.1",
        "--hours 0.01",
        "the replay runs on the recording's clock: 0.1 h at --speed 10 is 36 s, 0.01 h is 3.6 s",
    ),
    Substitute(
        "laserguard simulate --hours 24 --rate-hz 0.1",
        "--hours 24",
        "--hours 1",
        "24 h at 0.1 Hz is 553k rows (~20 s); 1 h runs the same code on 23k",
    ),
    Substitute(
        "laserguard keys",
        "/etc/laserguard/keys",
        "etc/laserguard/keys",
        "the operator's /etc is outside the test's folder and generate refuses to overwrite (a "
        "second run would fail): the same commands on a folder of the test",
    ),
    Substitute(
        "lcc-sim --rate-hz 1000 --fault-mix all",
        "lcc-sim --rate-hz 1000",
        "lcc-sim --duration-s 2 --rate-hz 1000",
        "runs until Ctrl-C; --duration-s (lcc-sim --help) ends it after 2 s",
    ),
)

SERVES = (
    Serve(
        "prometheus --config.file=deploy/prometheus/prometheus.yml",
        "http://127.0.0.1:9090/-/ready",
        "Prometheus serves until Ctrl-C: the test waits until it is ready, then stops it",
    ),
)

PREPARES = (
    Prepare(
        "laserguard export --sklearn model.skops",
        {
            "model.skops": ("model/model.skops", None),
            "frames.csv": ("sim/telemetry.csv", "model/model_card.json"),
        },
        "the README names any sklearn model and any data file with its features; the test uses "
        "the offline block's model and its simulated telemetry's columns of that model's features",
    ),
)

REPEATS = (
    Repeat(
        "laserguard clean raw",
        10,
        "laserguard train",
        "issue 19: the offline block back to back ten times in a row, each command right after the "
        "previous one exited, on one embedded data dir (clean's server still held the files when "
        "analyze started its own). train's grid search costs ~50 s per run on the 2-core EPYC, so "
        "it runs in the last run only (ten would be ~8 min); simulate, clean and analyze run ten times",
    ),
)

# Commands run with the working directory seeing these repository folders (as in a clone).
REPOSITORY_FOLDERS = ("deploy",)


@dataclass(frozen=True)
class Block:
    source: str
    line: int  # of the opening fence
    language: str  # "bash", "python" or "" (an untagged command block)
    text: str

    @property
    def id(self) -> str:
        return f"{self.source}:{self.line}"


FENCE = re.compile(r"^```([a-z]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def blocks(source: str) -> list[Block]:
    """The blocks of one file that SOURCES selects, in order."""
    languages, _ = SOURCES[source]
    text = (REPO / source).read_text()
    found = []
    for match in FENCE.finditer(text):
        language, body = match.group(1), match.group(2)
        if language not in languages:
            continue
        if language == "" and not COMMAND_START.match(body.lstrip()):
            continue
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(source, line, "bash" if language == "" else language, body))
    return found


def all_blocks() -> list[Block]:
    return [block for source in SOURCES for block in blocks(source)]


def commands(text: str) -> list[str]:
    """A shell block's commands: lines joined across trailing backslashes."""
    joined = re.sub(r"\\\n", " ", text)
    return [line for line in joined.splitlines() if line.strip()]
