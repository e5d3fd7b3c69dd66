"""The sandbox's seccomp policy, ready to hand to Docker as ``security_opt``.

``seccomp.json`` beside this module is moby's default profile
(``moby/moby`` ``profiles/seccomp/default.json`` at commit
``00f3d189e420d485e42d15fe494f96d272284e0e``) with two changes: the
``io_uring_setup``, ``io_uring_enter`` and ``io_uring_register`` syscalls are
no longer allowed, and the rule that allowed ``ptrace``, ``process_vm_readv``
and ``process_vm_writev`` unconditionally on kernels >= 4.8 is gone (they stay
allowed only with ``CAP_SYS_PTRACE``, which sandbox containers drop). Upstream's
rule that allows ``socket`` for every family but ``AF_VSOCK`` (40) is replaced by an
allow-list of the families a snippet needs: ``AF_UNIX`` (1), ``AF_INET`` (2),
``AF_INET6`` (10), and ``AF_NETLINK`` (16) with protocol ``NETLINK_ROUTE`` (0) only
(glibc's ``getaddrinfo`` and ``if_nameindex`` use it). ``AF_ALG``, ``AF_PACKET``,
``AF_KEY``, ``AF_XDP``, ``AF_VSOCK`` and the rest are refused with EPERM.

Use it as ``security_opt=["seccomp=" + seccomp_policy()]``.
"""

from __future__ import annotations

import json
from pathlib import Path

_POLICY_PATH = Path(__file__).with_name("seccomp.json")


def seccomp_policy(*, reuse: bool = False, gvisor: bool = False) -> str:
    """The policy as compact JSON text, as Docker's ``seccomp=`` option takes it.

    With ``reuse`` the POSIX message queue calls are refused too: a queue outlives its
    creator in the container's IPC namespace, and without mounting ``mqueue`` (a capability
    we drop) a restore could neither list nor remove it.

    With ``gvisor`` (``runsc --oci-seccomp``, which applies the policy inside the sandbox) two
    rules change, both measured with the Debian runsc 2022-12. ``clone3`` is left to gVisor's
    kernel: that runsc ignores a rule's ``errnoRet``, so the ``ENOSYS`` the policy asks for
    became ``EPERM``, on which glibc does not fall back to ``clone`` and no thread could start;
    gVisor itself answers ``ENOSYS``. And syscall 270, which the policy allows as ``pselect6``,
    is ``pselect`` in gVisor's table: without that name every ``select.select`` failed with
    ``EPERM``. (Every other syscall the policy allows behaves as without a policy: probed.)
    """
    policy = json.loads(_POLICY_PATH.read_text(encoding="utf-8"))
    if reuse:
        for rule in policy["syscalls"]:
            rule["names"] = [n for n in rule["names"] if not n.startswith("mq_")]
    if gvisor:
        policy["syscalls"] = [r for r in policy["syscalls"] if r["names"] != ["clone3"]]
        policy["syscalls"].append({"names": ["clone3", "pselect"], "action": "SCMP_ACT_ALLOW"})
    return json.dumps(policy, separators=(",", ":"))
