"""README.md (and the docs' command blocks a user is told to run) run as written (issue 19).

Every ```bash and ```python block of README.md, then the selected blocks of docs/ (which, and
why the others are not: ``readme_blocks.SOURCES``), run in order in one fresh temporary
directory, as a newcomer pastes them after README's setup command:

- the environment of a fresh account: HOME is an empty folder, no LASERGUARD_* variable (so no
  ``LASERGUARD_MONGO_URI``: every tool uses the embedded default database, in
  ``$HOME/.local/share/laserguard/mongodb``), PATH starts with the virtualenv's bin folder (as
  after ``source .venv/bin/activate``), Python blocks run with that virtualenv's interpreter;
- the repository's ``deploy/`` folder is visible in the directory (the Prometheus commands read
  it, as in a clone);
- a shell block runs as one ``bash -e -o pipefail`` script (exports carry over between lines,
  the first failing command fails the block).

What the test changes is in ``readme_blocks``: skipped blocks or commands (each with its reason,
reported as a pytest skip for a whole block), flag values shortened through documented flags
(``--hours``, ``--duration-s``), servers run until ready and then stopped with Ctrl-C (SIGINT),
and inputs a block names but no block makes. Blocks are read from the files when the tests are
collected, so a changed flag or a new block is tested as it now reads.

README's offline block (simulate -> clean -> analyze -> train) runs ten times back to back
(``readme_blocks.REPEATS``: the issue's "ten times in a row"; train in the last run only, why is
there), each run reading back every row clean stored.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mongo_fixtures import require_server_executable
from readme_blocks import (
    PREPARES,
    REPEATS,
    REPO,
    REPOSITORY_FOLDERS,
    SERVES,
    SKIPS,
    SUBSTITUTIONS,
    Block,
    all_blocks,
    blocks,
    commands,
)

BLOCK_TIMEOUT_S = 300
BLOCKS = all_blocks()


def newcomer_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASERGUARD_")}
    env["HOME"] = str(home)
    env["XDG_DATA_HOME"] = str(home / ".local" / "share")  # the default, whatever the CI account sets
    env.pop("XDG_CONFIG_HOME", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("newcomer")
    workdir, home = root / "work", root / "home"
    workdir.mkdir()
    home.mkdir()
    for folder in REPOSITORY_FOLDERS:
        (workdir / folder).symlink_to(REPO / folder)
    yield workdir, newcomer_env(home)


def whole_block_skip(block: Block) -> str | None:
    for skip in SKIPS:
        if skip.whole_block and skip.match in block.text:
            return skip.reason
    return None


def edited_commands(block: Block) -> list[tuple[str, str]]:
    """The block's commands as the test runs them: ("run" | "serve" | "skip", command)."""
    out = []
    for command in commands(block.text):
        if any(not s.whole_block and s.match in command for s in SKIPS):
            out.append(("skip", command))
            continue
        for substitute in SUBSTITUTIONS:
            if substitute.match in command:
                assert substitute.old in command, (substitute, command)
                command = command.replace(substitute.old, substitute.new)
        kind = "serve" if any(s.match in command for s in SERVES) else "run"
        out.append((kind, command))
    return out


def run_script(script: str, workdir: Path, env: dict[str, str], what: str) -> str:
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, (
        f"{what} failed with exit status {result.returncode}:\n{script}\n"
        f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    )
    return result.stdout


def serve_until_ready(command: str, workdir: Path, env: dict[str, str]) -> None:
    serve = next(s for s in SERVES if s.match in command)
    log = workdir / f"serve_{int(time.time() * 1000)}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", command], cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        ready = False
        while not ready and time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(serve.ready_url, timeout=1) as response:
                    ready = response.status == 200
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        assert ready, f"{command!r} was not ready at {serve.ready_url}:\n{log.read_text()[-3000:]}"
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        status = process.wait(30)
        assert status == 0, f"{command!r} exited with {status} on Ctrl-C:\n{log.read_text()[-3000:]}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def prepare_inputs(block: Block, workdir: Path) -> None:
    import pandas as pd

    for prepare in PREPARES:
        if prepare.match in block.text:
            for name, (source, card) in prepare.files.items():
                if card is None:
                    shutil.copyfile(workdir / source, workdir / name)
                else:
                    features = json.loads((workdir / card).read_text())["data"]["feature_names"]
                    pd.read_csv(workdir / source)[features].to_csv(workdir / name, index=False)


def needs_tools(block: Block) -> None:
    text = block.text
    if "laserguard" in text and "laserguard export" not in text:
        require_server_executable()  # most laserguard commands use the embedded database
    for tool in ("promtool", "prometheus"):
        if re.search(rf"^\s*{tool} ", text, re.MULTILINE) and shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (CI installs it: scripts/install-system-deps.sh)")


def test_every_rule_still_matches_the_text() -> None:
    """A rule written for a command that has changed or gone must go too (or follow the text)."""
    texts = [block.text for block in BLOCKS]
    rules = [*SKIPS, *SUBSTITUTIONS, *SERVES, *PREPARES, *REPEATS]
    stale = [rule for rule in rules if not any(rule.match in text for text in texts)]
    assert not stale, f"rules matching no block any more: {stale}"
    assert any(block.source == "README.md" and block.language == "python" for block in BLOCKS)
    assert len(blocks("README.md")) >= 6, [b.id for b in blocks("README.md")]


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_block_runs_as_written(block: Block, newcomer: tuple[Path, dict[str, str]]) -> None:
    reason = whole_block_skip(block)
    if reason is not None:
        pytest.skip(f"not run: {reason}")
    needs_tools(block)
    workdir, env = newcomer
    prepare_inputs(block, workdir)
    if block.language == "python":
        script = workdir / f"block_{block.source.replace('/', '_')}_{block.line}.py"
        script.write_text(block.text)
        run_script(f"{sys.executable} {script.name}", workdir, env, block.id)
        return
    repeat = next((r for r in REPEATS if r.match in block.text), None)
    if repeat is None:
        run_shell_block(edited_commands(block), workdir, env, block.id)
        return
    stored: int | None = None
    for run in range(1, repeat.times + 1):
        edited = [
            (kind, command)
            for kind, command in edited_commands(block)
            if run == repeat.times or repeat.last_only not in command
        ]
        output = run_shell_block(edited, workdir, env, f"{block.id}, run {run} of {repeat.times}")
        stored = check_nothing_lost(output, stored, run)


def run_shell_block(edited: list[tuple[str, str]], workdir: Path, env: dict[str, str], what: str) -> str:
    """Run consecutive commands as one script; servers until ready; skipped ones not. Returns stdout."""
    output = ""
    pending: list[str] = []
    for kind, command in edited:
        if kind == "run":
            pending.append(command)
            continue
        if pending:
            output += run_script("\n".join(pending), workdir, env, what)
            pending = []
        if kind == "serve":
            serve_until_ready(command, workdir, env)
    if pending:
        output += run_script("\n".join(pending), workdir, env, what)
    return output


def check_nothing_lost(output: str, stored: int | None, run: int) -> int:
    """Each run of the offline block reads back every row clean stored: all new in the first run,
    the same rows (already stored: clean is idempotent) in every later one."""
    uploaded = re.search(r"uploaded: (\d+) new, (\d+) already stored", output)
    read = re.search(r"read (\d+) clean rows", output)
    assert uploaded and read, output
    new, already = int(uploaded.group(1)), int(uploaded.group(2))
    if stored is None:
        assert new > 0 and already == 0, uploaded.group(0)
        stored = new
    else:
        assert (new, already) == (0, stored), f"run {run}: {uploaded.group(0)}"
    assert int(read.group(1)) == stored, f"run {run}: {read.group(0)}, {stored} stored"
    return stored
