"""Registering gVisor with the engine: daemon.json is merged, never clobbered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.errors import SandboxError
from grader.sandbox import gvisor


def test_with_runsc_keeps_every_other_setting() -> None:
    """runsc joins the runtimes with --network=none and --oci-seccomp; the rest is kept."""
    config = {"storage-driver": "overlay2", "runtimes": {"other": {"path": "/bin/other"}}}
    assert gvisor.with_runsc(config) == {
        "storage-driver": "overlay2",
        "runtimes": {
            "other": {"path": "/bin/other"},
            "runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--oci-seccomp"]},
        },
    }


def test_register_writes_once(tmp_path: Path) -> None:
    """The first registration writes daemon.json; a second finds nothing to change."""
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text('{"mtu": 1400}')
    runsc = tmp_path / "runsc"
    runsc.write_text("")
    assert gvisor.register(daemon_json, str(runsc)) is True
    written = json.loads(daemon_json.read_text())
    assert written["mtu"] == 1400
    assert written["runtimes"]["runsc"]["path"] == str(runsc)
    assert gvisor.register(daemon_json, str(runsc)) is False


def test_register_refuses_a_broken_daemon_json(tmp_path: Path) -> None:
    """A daemon.json that is not JSON is left alone with a precise error."""
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text("{broken")
    runsc = tmp_path / "runsc"
    runsc.write_text("")
    with pytest.raises(SandboxError, match="is not JSON"):
        gvisor.register(daemon_json, str(runsc))
    assert daemon_json.read_text() == "{broken"


def test_register_needs_runsc_installed(tmp_path: Path) -> None:
    """Without the runsc binary nothing is written."""
    daemon_json = tmp_path / "daemon.json"
    with pytest.raises(SandboxError, match="install the Debian package runsc"):
        gvisor.register(daemon_json, str(tmp_path / "missing"))
    assert not daemon_json.exists()
