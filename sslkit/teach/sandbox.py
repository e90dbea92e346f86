"""Run a student's code in a sandbox: bubblewrap (``bwrap``, Debian's ``bubblewrap``) namespaces
with prlimit's resource limits, for :func:`sslkit.teach.grading.grade`.

What the sandbox protects, for each notebook it grades:

- **files**: the whole system is mounted read-only; the folders the caller names (the class's
  submissions, the autograders, the scores), the grader's home and runtime folder and ``/run``
  (session sockets: D-Bus, Docker) are hidden behind empty folders; a copy of the one
  submission and its autograder is mounted read-only at ``/tmp/work``, and the only places it
  can write are a private ``/tmp`` and ``/dev/shm`` of bounded size (it cannot fill the disk);
- **processes**: its own process namespace (it cannot see or signal the grader or anyone
  else), a bounded number of processes, and it dies with the grader;
- **network**: its own network namespace: a loopback of its own and no route out;
- **resources**: address space per process, the size of any file it writes (output included),
  open files; run as the unprivileged user ``nobody`` when the grader is root.

What it does not protect: the CPU time it takes (the grader's timeout stops it), the reading
of files outside the hidden folders that its user may read (``nobody``: world-readable ones; a
grader that is not root: the grader's own), a socket file in a visible folder, its own score
(otter's tests run inside the notebook's kernel, where the submission's code can reach them),
and a kernel exploit.
Otter's Docker mode (``otter grade``) isolates further where Docker is available.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["Limits", "problem", "command", "bounded", "WORK", "NOBODY"]

#: Where the submission's writable copy is mounted inside the sandbox (its working folder).
WORK = "/tmp/work"
#: The user a root grader runs student code as.
NOBODY = 65534
# Environment variables the sandbox keeps (everything else, secrets included, is cleared).
_KEPT = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
         "TQDM_DISABLE", "SSLKIT_PROFILE")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed grading (bytes and counts)."""

    memory: int = 6 * 2**30  # address space of each process (RLIMIT_AS)
    processes: int = 256  # processes of the sandbox's user (RLIMIT_NPROC)
    file_size: int = 256 * 2**20  # the largest file it may write, its output too (RLIMIT_FSIZE)
    tmp_size: int = 1 * 2**30  # its private /tmp, the working copy included (a tmpfs)
    open_files: int = 1024  # RLIMIT_NOFILE

    def __post_init__(self):
        for name, value in dataclasses.asdict(self).items():
            if not (isinstance(value, int) and value > 0):
                raise ValueError(f"Limits.{name} must be a positive whole number, got {value!r}")


@functools.lru_cache(maxsize=1)
def problem() -> str | None:
    """``None`` where a sandbox can be made on this machine, else why not (in words)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bwrap is not installed (Debian and Ubuntu: apt-get install bubblewrap)"
    for tool in ("prlimit", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (it comes with util-linux)"
    with tempfile.TemporaryDirectory(prefix="sslkit-sandbox-") as tmp:
        probe = command([sys.executable, "-c", "import sslkit.teach.grading"], Path(tmp))
        try:
            ran = subprocess.run(probe, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as e:
            return f"bwrap could not run: {e}"
    if ran.returncode != 0:
        said = (ran.stderr.strip().splitlines() or ["no message"])[-1]
        who = "the unprivileged user nobody" if os.geteuid() == 0 else "a user namespace"
        return (
            f"sslkit cannot be imported in a sandbox as {who} ({said}): bwrap needs user "
            f"namespaces, and {sys.prefix} must be readable by others"
        )
    return None


def command(
    cmd: list[str], work: Path, hide: Iterable[Path] = (), limits: Limits = Limits()
) -> list[str]:
    """``cmd`` as a sandboxed command line: ``work`` (a folder holding only what this one run may
    read) is mounted read-only at :data:`WORK`, the working folder; each path in ``hide`` is
    hidden behind an empty folder. Nothing on disk can be written: the only place is the
    sandbox's own ``/tmp`` (a tmpfs of ``limits.tmp_size``); results leave through a file
    descriptor the caller passes. The caller runs the line (and its timeout)."""
    work = Path(work).resolve()
    private = ["--perms", "1777", "--size", str(limits.tmp_size), "--tmpfs", "/tmp",
               "--perms", "1777", "--size", str(limits.tmp_size), "--tmpfs", "/dev/shm",
               "--tmpfs", "/run"]  # fmt: skip
    mounts = [*private, *_hidden([*hide, *_personal()]), "--ro-bind", str(work), WORK]
    env = ["--clearenv"]
    for name in _KEPT:
        if name in os.environ:
            env += ["--setenv", name, os.environ[name]]
    for name, value in (
        ("HOME", "/tmp/home"),
        ("TMPDIR", "/tmp"),
        ("MPLCONFIGDIR", "/tmp/mpl"),
        ("JUPYTER_RUNTIME_DIR", "/tmp/jupyter"),
        ("IPYTHONDIR", "/tmp/ipython"),
    ):
        env += ["--setenv", name, value]  # fmt: skip
    if os.geteuid() == 0:  # student code never runs as root: nobody, no capabilities
        user = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]  # fmt: skip
    else:
        user = []
    return [*_namespaces(shutil.which("bwrap")), *mounts, "--chdir", WORK, *env, "--", *user,
            *bounded(cmd, limits, NOBODY if os.geteuid() == 0 else None)]  # fmt: skip


def bounded(cmd: list[str], limits: Limits, uid: int | None = None) -> list[str]:
    """``cmd`` under prlimit's bounds on memory, file size, open files and cores, and on
    processes: ``limits.processes`` more than user ``uid`` (who runs it; this process's user by
    default) already has, since the kernel counts every process of a user."""
    uid = os.getuid() if uid is None else uid
    processes = limits.processes + _processes_of(uid)
    return ["prlimit", f"--as={limits.memory}", f"--nproc={processes}",
            f"--fsize={limits.file_size}", f"--nofile={limits.open_files}", "--core=0", "--",
            *cmd]  # fmt: skip


def _processes_of(uid: int) -> int:
    """How many tasks (threads included, as the kernel counts them for ``RLIMIT_NPROC``) user
    ``uid`` has, read from ``/proc`` (0 where there is no ``/proc``)."""
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue  # gone meanwhile, or unreadable
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count


def _namespaces(bwrap: str) -> list[str]:
    """bwrap with the system read-only and namespaces of its own: every one for a user, every
    one but the user namespace for root (who becomes nobody inside, which a user namespace
    that maps only root would not allow)."""
    if os.geteuid() == 0:
        shared = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                  "--unshare-cgroup-try"]  # fmt: skip
    else:
        shared = ["--unshare-all"]
    return [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", *shared,
            "--die-with-parent", "--new-session"]  # fmt: skip


def _hidden(hide: Iterable[Path]) -> list[str]:
    """bwrap's mounts that hide each path of ``hide`` (a folder behind an empty one, a file
    behind an empty file) and closed folders (which the sandbox's user, nobody, may not enter:
    ``/root`` holding pyenv's Python), while the Python that grades and sslkit stay reachable,
    read-only, through folders bwrap makes open."""
    tmp = Path("/tmp")
    hidden = sorted({Path(p).resolve() for p in hide} - {tmp})
    if any(p in tmp.parents for p in hidden):
        raise ValueError(f"cannot hide {[p for p in hidden if p in tmp.parents][0]}: too broad")
    hidden = [p for p in hidden if tmp not in p.parents]  # the sandbox's /tmp is its own already
    needed = sorted({Path(p).resolve() for p in (sys.prefix, sys.base_prefix, _package_root())})
    clash = [p for p in hidden if p in needed]
    if clash:
        raise ValueError(f"{clash[0]} is the Python that grades: it cannot be hidden")
    root = os.geteuid() == 0
    blocked = {tmp, *(p for p in hidden if p.is_dir())}
    closed = {f for n in needed for f in n.parents if root and not f.stat().st_mode & 0o001}
    mounts = [x for f in sorted(closed - blocked) for x in ("--tmpfs", str(f))]
    for path in hidden:
        mounts += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
    for path in needed:
        outer = next((f for f in reversed(path.parents) if f in blocked | closed), None)
        if outer is None:
            continue
        for folder in (f for f in reversed(path.parents) if outer in f.parents):
            mounts += ["--perms", "0755", "--dir", str(folder)]  # bwrap makes them 0700 unless said
        mounts += ["--ro-bind", str(path), str(path)]
    return mounts


def _personal() -> list[Path]:
    """The grader's own folders, hidden from student code: the home folder (keys, tokens, the
    answer key) and the runtime folder (the session's sockets: D-Bus, a Docker socket)."""
    found = [Path.home(), os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")]
    return [Path(p) for p in found if p and Path(p).is_dir() and Path(p) != Path("/")]


def _package_root() -> Path:
    return Path(__file__).resolve().parents[1]  # the sslkit folder
