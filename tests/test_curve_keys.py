"""Key files and key directories: `laserguard keys`, loose permissions, the allow-list layout."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import zmq
import zmq.auth

from laserguard.cli import main
from laserguard.wire.curve_keys import (
    KeyFileError,
    load_allow_list,
    read_key_pair,
    read_public_key,
    write_key_pair,
)


def test_generate_writes_a_complete_key_directory_with_private_secrets(tmp_path: Path) -> None:
    out = tmp_path / "site"
    assert main(["keys", "generate", "--out", str(out)]) == 0
    for name in ("lcc", "detector", "observer"):
        assert stat.S_IMODE((out / f"{name}.key_secret").stat().st_mode) == 0o600
        pair = read_key_pair(out / f"{name}.key_secret")
        assert read_public_key(out / f"{name}.key") == pair.public
        # pyzmq's own reader agrees (the format is ZeroMQ's certificate format).
        assert zmq.auth.load_certificate(out / f"{name}.key_secret") == (pair.public, pair.secret)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    allowed = load_allow_list(out / "allow")
    roles = {entry.name: entry.role for entry in allowed.values()}
    assert roles == {"detector": "command", "observer": "read"}


def test_generate_refuses_to_overwrite_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "observer.key").write_text("keep me")
    assert main(["keys", "generate", "--out", str(out)]) == 2
    assert "observer.key" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["observer.key"]
    assert (out / "observer.key").read_text() == "keep me"


def test_add_client_gives_a_new_pair_a_role(tmp_path: Path) -> None:
    out = tmp_path / "site"
    assert main(["keys", "generate", "--out", str(out)]) == 0
    assert main(["keys", "add-client", "--dir", str(out), "--name", "detector-b", "--role", "command"]) == 0
    roles = {entry.name: entry.role for entry in load_allow_list(out / "allow").values()}
    assert roles["detector-b"] == "command"
    assert main(["keys", "add-client", "--dir", str(out), "--name", "detector-b", "--role", "read"]) == 2


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_secret_file_others_can_read_is_refused_naming_file_and_mode(tmp_path: Path, mode: int) -> None:
    write_key_pair(tmp_path, "lcc")
    secret = tmp_path / "lcc.key_secret"
    os.chmod(secret, mode)
    with pytest.raises(KeyFileError, match=f"{secret}.*has mode {mode:04o}.*chmod 600"):
        read_key_pair(secret)


def test_bare_z85_files_and_bad_keys(tmp_path: Path) -> None:
    public, secret = zmq.curve_keypair()
    (tmp_path / "bare.key_secret").write_bytes(secret + b"\n")
    os.chmod(tmp_path / "bare.key_secret", 0o600)
    assert read_key_pair(tmp_path / "bare.key_secret").public == public
    (tmp_path / "bad.key").write_text('public-key = "short"\n')
    with pytest.raises(KeyFileError, match="'short' is not a 40-character Z85"):
        read_public_key(tmp_path / "bad.key")
    other_public, _ = zmq.curve_keypair()
    mixed = tmp_path / "mixed.key_secret"
    mixed.write_text(f'public-key = "{other_public.decode()}"\nsecret-key = "{secret.decode()}"\n')
    os.chmod(mixed, 0o600)
    with pytest.raises(KeyFileError, match="does not belong"):
        read_key_pair(mixed)


def test_allow_list_refuses_a_key_with_two_roles_and_an_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="has no client keys"):
        load_allow_list(tmp_path)
    pair = write_key_pair(tmp_path, "dash")
    for role in ("read", "command"):
        (tmp_path / role).mkdir()
        (tmp_path / role / "dash.key").write_bytes((tmp_path / "dash.key").read_bytes())
    with pytest.raises(KeyFileError, match="a key has one role"):
        load_allow_list(tmp_path)
    assert pair.public
