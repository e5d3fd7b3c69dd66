"""The probe of the cross-run leak suite: a snippet that prints what a container looks like.

It runs as a submission, in the sandbox, and prints one JSON object: everything a previous run
in the same container could have left behind and a later one could see. Values that differ
between any two containers by construction (process ids, inode numbers) are normalized away;
the memory cgroup's usage is printed on its own line, compared with a tolerance.
"""

from __future__ import annotations

PROBE = r"""
import builtins, gc, hashlib, json, os, resource, signal, socket, sys, threading, warnings

def listing(root):
    found = []
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = os.path.join(folder, name)
            if path == "/sandbox/main.py":
                continue  # this probe
            info = os.lstat(path)
            found.append([path, oct(info.st_mode), info.st_uid, info.st_size])
    return found

def mounts():
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            point, options = left.split()[4], left.split()[5]
            fstype = right.split()[0]
            if point.startswith(("/proc", "/sys")) or fstype in ("proc", "sysfs", "devpts"):
                continue
            found.append([point, options, fstype])
    return sorted(found)  # the engine mounts them in no fixed order

def table(path):
    try:
        with open(path) as handle:
            return [line.split() for line in handle.read().splitlines()[1:] if line.strip()]
    except OSError as exc:
        return type(exc).__name__

def processes():
    me = os.getpid()
    found = []
    for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().decode("utf-8", "replace")
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
        except OSError as exc:
            cmdline, fields = type(exc).__name__, ["?", "?"]
        orphan = fields[1] == "1"
        found.append([pid == 1, cmdline, fields[0], orphan])
    return sorted(found)

def descriptors():
    found = []
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        found.append([int(fd), target.split(":[")[0]])
    return found

def status():
    keep = ("Uid", "Gid", "Groups", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt", "CapInh",
            "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Threads")
    with open("/proc/self/status") as handle:
        rows = [line.split(":", 1) for line in handle]
    return {k: v.strip() for k, v in rows if k in keep}

def modules():
    names = sorted(sys.modules)
    digest = hashlib.sha256()
    for name in names:
        module = sys.modules[name]
        keys = sorted(vars(module)) if module is not None and hasattr(module, "__dict__") else []
        digest.update(json.dumps([name, keys]).encode())
    return names, digest.hexdigest()

def limits():
    names = [n for n in sorted(dir(resource)) if n.startswith("RLIMIT_")]
    return {n: resource.getrlimit(getattr(resource, n)) for n in names}

def dispositions():
    found = {}
    for sig in sorted(signal.valid_signals()):
        try:
            handler = signal.getsignal(sig)
        except (OSError, ValueError):
            continue
        found[int(sig)] = getattr(handler, "__qualname__", str(handler))
    return found

def unix_sockets():
    rows = table("/proc/net/unix")
    return [row[7] if len(row) > 7 else "" for row in rows] if isinstance(rows, list) else rows

def posix_mq():
    try:
        return sorted(os.listdir("/dev/mqueue"))
    except OSError as exc:
        return type(exc).__name__

umask = os.umask(0o022)
os.umask(umask)
names, fingerprint = modules()
snapshot = {
    "files": {point: listing(point) for point, opts, _ in mounts() if "rw" in opts.split(",")},
    "mounts": mounts(),
    "processes": processes(),
    "threads": [t.name for t in threading.enumerate()],
    "tasks": len(os.listdir("/proc/self/task")),
    "descriptors": descriptors(),
    "environment": dict(os.environ),
    "modules": names,
    "module_namespaces": fingerprint,
    "sys": [sys.path, [type(f).__name__ for f in sys.meta_path], len(sys.path_hooks),
            sorted(sys.path_importer_cache), sys.argv, sys.getrecursionlimit(),
            sys.getswitchinterval(), str(sys.flags), sys.displayhook.__qualname__,
            sys.excepthook.__qualname__],
    "builtins": sorted(vars(builtins)),
    "warnings": [str(f) for f in warnings.filters],
    "gc": [gc.isenabled(), gc.get_threshold()],
    "cwd": os.getcwd(),
    "umask": umask,
    "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()],
    "rlimits": limits(),
    "signals": dispositions(),
    "status": status(),
    "oom_score_adj": open("/proc/self/oom_score_adj").read().strip(),
    "sysv_ipc": {kind: table(f"/proc/sysvipc/{kind}") for kind in ("shm", "msg", "sem")},
    "posix_mq": posix_mq(),
    "unix_sockets": unix_sockets(),
    "inet_sockets": {t: table(f"/proc/net/{t}") for t in ("tcp", "tcp6", "udp", "udp6", "raw")},
    "hostname": socket.gethostname(),
}
print(json.dumps(snapshot, sort_keys=True))
with open("/sys/fs/cgroup/memory/memory.usage_in_bytes") as handle:
    print(int(handle.read()))
"""
"""The probe's source. Its first line of output is the snapshot, its second the memory usage."""

THIRD_PARTY = "import httpx  # a package import: the probe runs with the full pre-import profile\n"
