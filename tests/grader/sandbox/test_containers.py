"""A sandbox container's host configuration: the same hardening under runc and gVisor."""

from __future__ import annotations

import json

import pytest

from grader.domain import Limits
from grader.errors import ConfigError, SandboxError
from grader.sandbox.containers import (
    RUNSC_HOST_PIDS_BASE,
    RUNSC_HOST_PIDS_PER_TASK,
    host_config_kwargs,
)
from grader.sandbox.runner import DockerSandbox
from grader.sandbox.seccomp import seccomp_policy
from grader.settings import ReuseMode, ReuseSettings, SandboxSettings


def test_under_runc_the_pids_limit_is_the_cgroups_and_nproc_stays_unset() -> None:
    """runc: pids_limit is the snippet's limit; RLIMIT_NPROC (host-wide per uid) is not set."""
    config = host_config_kwargs(Limits(pids=32), seccomp=None, runtime=None)
    assert config["pids_limit"] == 32
    assert "nproc" not in {u["name"] for u in config["ulimits"]}


def test_under_gvisor_the_snippets_limit_is_nproc_and_the_host_leaves_room() -> None:
    """runsc: RLIMIT_NPROC is the snippet's limit; the host cgroup leaves gVisor its own pids."""
    config = host_config_kwargs(Limits(pids=32), seccomp=None, runtime="runsc")
    assert {"name": "nproc", "soft": 32, "hard": 32} in config["ulimits"]
    assert config["pids_limit"] == RUNSC_HOST_PIDS_BASE + RUNSC_HOST_PIDS_PER_TASK * 32
    assert config["runtime"] == "runsc"
    runc = host_config_kwargs(Limits(pids=32), seccomp=None, runtime=None)
    same = {k: v for k, v in config.items() if k not in ("pids_limit", "ulimits", "runtime")}
    assert same == {k: v for k, v in runc.items() if k not in ("pids_limit", "ulimits", "runtime")}


def test_the_gvisor_policy_differs_only_in_clone3_and_pselect() -> None:
    """Under gVisor clone3 is left to its kernel (ENOSYS) and pselect6 is allowed by gVisor's
    name for it; every other rule is the same."""
    runc = json.loads(seccomp_policy())
    gvisor = json.loads(seccomp_policy(gvisor=True))
    assert [r for r in runc["syscalls"] if r["names"] == ["clone3"]] == [
        {
            "names": ["clone3"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 38,
            "excludes": {"caps": ["CAP_SYS_ADMIN"]},
        }
    ]
    assert gvisor["syscalls"][-1] == {"names": ["clone3", "pselect"], "action": "SCMP_ACT_ALLOW"}
    others = [r for r in runc["syscalls"] if r["names"] != ["clone3"]]
    assert gvisor["syscalls"][:-1] == others


def test_reuse_mode_is_refused_with_runsc() -> None:
    """Settings and the sandbox itself refuse reuse mode under gVisor (strict only)."""
    with pytest.raises(ValueError, match="reuse mode is not available with runtime runsc"):
        SandboxSettings(runtime="runsc", reuse=ReuseSettings(mode=ReuseMode.ANY))
    assert SandboxSettings(runtime="runsc").reuse.mode is ReuseMode.OFF
    with pytest.raises(SandboxError, match="reuse mode is not available with runtime runsc"):
        DockerSandbox(
            object(),  # type: ignore[arg-type]  # refused before the client is used
            runtime="runsc",
            reuse=ReuseSettings(mode=ReuseMode.SAME_KEY),
        )


def test_a_pool_whose_ttl_leaves_no_room_for_a_run_is_refused() -> None:
    """A ready container is handed out only while a whole run fits before it expires: a ttl
    shorter than one run (wall + grace + 10 s) would refill the pool forever."""
    box = DockerSandbox(object(), grace_seconds=2.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pool ttl 42 s leaves no room for a 42 s run"):
        box.start_pool(["any"], size=1, limits=Limits(wall_seconds=30.0), ttl=42)
    assert box.pool is None
    with pytest.raises(ValueError, match="greater than 60"):
        SandboxSettings(pool_ttl_seconds=60)
    assert SandboxSettings().pool_ttl_seconds == 3600.0
