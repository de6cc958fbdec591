"""Run one command in a bubblewrap sandbox with resource limits and a wall-clock budget.

The sandbox sees a fresh root (tmpfs) holding only what `Mounts` names: the system's /usr, the
Python install and the venv (read-only), a cnnlib folder (read-only), and one writable work folder.
No network (a new network namespace with only loopback, so a Jupyter kernel's ZMQ over 127.0.0.1
still works), new pid/ipc/uts namespaces, an empty environment apart from what we set, tmpfs /tmp.

Limits that the kernel enforces per process (rlimits: address space, CPU seconds, file size, open
files, processes) are set before bubblewrap starts and inherited. RLIMIT_NPROC counts processes per
*real uid* and is ignored for root, so when we run as root the sandboxed command is started under a
uid of its own (one per sandbox, so one fork bomb cannot use up another sandbox's process slots):
bubblewrap keeps CAP_SETUID/CAP_SETGID for `setpriv`, which switches uid, clears groups and drops
every capability before the command runs. The wall-clock budget is enforced from outside: the
whole process group of bubblewrap is killed, and with it (new pid namespace, --die-with-parent)
everything inside.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

__all__ = [
    "Conversation",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "bwrap_path",
    "current_slot",
    "python_mounts",
    "run_sandboxed",
]

# Sandboxed commands run as uid/gid UID_BASE + slot: not an account anyone logs in as.
UID_BASE = 200_000


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create a sandbox on this machine."""


@dataclasses.dataclass(frozen=True)
class SandboxLimits:
    """What one sandboxed run may use. memory_mb is address space per process (RLIMIT_AS)."""

    wall_s: float = 300.0
    cpu_s: int = 300
    memory_mb: int = 3072
    nproc: int = 64
    fsize_mb: int = 64
    nofile: int = 256


@dataclasses.dataclass
class SandboxResult:
    returncode: int | None  # None when killed for the wall budget
    timed_out: bool
    wall_s: float
    stderr_tail: str
    stdout_tail: str

    @property
    def signal_name(self) -> str | None:
        if self.returncode is not None and self.returncode < 0:
            return signal.Signals(-self.returncode).name
        return None


def current_slot() -> int:
    """A slot (see run_sandboxed) unique among the sandboxes running at once on this machine:
    one per grading process and thread (a Dask worker may grade on several threads)."""
    return (os.getpid() * 7919 + threading.get_ident() % 7919) % 100_000


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def python_mounts() -> list[str]:
    """Read-only folders the venv's Python needs: the venv and the install it points to.

    With a pyenv interpreter under /root, this is only that version's folder, not /root.
    """
    paths = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    exe = os.path.realpath(sys.executable)
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    for path in (exe, stdlib):
        if not any(path.startswith(p + os.sep) for p in paths):
            paths.add(os.path.dirname(path))
    # The venv's own folder (sys.prefix may be a symlinked path; keep the literal too).
    paths.add(os.path.abspath(sys.prefix))
    return sorted(p for p in paths if not p.startswith("/usr/") and p != "/usr")


def _parents(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _bwrap_args(
    ro_binds: list[tuple[str, str]],
    rw_binds: list[tuple[str, str]],
    chdir: str,
    env: dict[str, str],
    keep_setuid: bool,
) -> list[str]:
    args = [
        bwrap_path() or "bwrap",
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session",
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    if os.getuid() != 0:
        args += ["--unshare-user"]
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{link}"):
            args += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
        elif os.path.isdir(f"/{link}"):
            args += ["--ro-bind", f"/{link}", f"/{link}"]
    # /etc: only what the dynamic loader and Python want, never passwd-like secrets.
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf"):
        if os.path.exists(f"/etc/{name}"):
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    # bubblewrap creates missing parent folders 0700 and root-owned: make them 0755 ourselves,
    # or an unprivileged uid cannot walk to its own mounts.
    made = {"/", "/usr", "/tmp", "/proc", "/dev", "/etc"}
    for _, dest in ro_binds + rw_binds:
        for parent in _parents(dest):
            if parent not in made:
                args += ["--perms", "0755", "--dir", parent]
                made.add(parent)
    for src, dest in ro_binds:
        args += ["--ro-bind", src, dest]
    for src, dest in rw_binds:
        args += ["--bind", src, dest]
    args += ["--chdir", chdir, "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    if keep_setuid:
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return args


def _set_limits(limits: SandboxLimits, nproc: int | None):
    def apply():
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb,) * 2)
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.fsize_mb * mb,) * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.nofile,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc,) * 2)

    return apply


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _count_user_processes() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def _launch(
    command: list[str],
    *,
    workdir: Path,
    ro_binds: list[tuple[str, str]],
    limits: SandboxLimits,
    slot: int,
    env: dict[str, str] | None,
    unsafe: bool,
) -> tuple[list[str], dict]:
    """(argv, Popen keyword arguments) that start `command` in the sandbox (see run_sandboxed)."""
    workdir = Path(workdir)
    inside = "/sandbox"
    base_env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": inside,
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "JUPYTER_PLATFORM_DIRS": "1",
        "CNNLIB_QUICK": "1",
        "CNNLIB_GRADING": "1",
    }
    base_env.update(env or {})
    uid = UID_BASE + slot
    as_root = os.getuid() == 0
    nproc: int | None
    if unsafe:
        argv = list(command)
        base_env["HOME"] = str(workdir)
        nproc = None
    else:
        if bwrap_path() is None:
            raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
        argv = _bwrap_args(ro_binds, [(str(workdir), inside)], inside, base_env, as_root)
        argv.append("--")
        if as_root:
            for path in [workdir, *workdir.rglob("*")]:
                os.lchown(path, uid, uid)
            argv += [
                "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
            ]  # fmt: skip
            nproc = limits.nproc
        else:
            # Without root the count is shared with the user's other processes.
            nproc = _count_user_processes() + limits.nproc
        argv += command
    options = {
        "cwd": workdir if unsafe else None,
        "env": base_env if unsafe else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        "start_new_session": True,
        "preexec_fn": _set_limits(limits, nproc),
    }
    return argv, options


def _stop(proc: subprocess.Popen) -> None:
    # Whatever is left of the group (all of it, on a timeout) goes.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_sandboxed(
    command: list[str],
    *,
    workdir: Path,
    ro_binds: list[tuple[str, str]],
    limits: SandboxLimits,
    slot: int,
    env: dict[str, str] | None = None,
    log_dir: Path,
    unsafe: bool = False,
) -> SandboxResult:
    """Run `command` with `workdir` mounted writable at /sandbox (its cwd and HOME).

    ro_binds: (host path, path inside) pairs mounted read-only. slot: a small integer unique among
    the sandboxes running at the same time (it picks the uid). unsafe=True runs without bubblewrap
    (limits and the wall budget still apply, isolation does not): for machines without it, only
    when the instructor asks.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    argv, options = _launch(
        command, workdir=workdir, ro_binds=ro_binds, limits=limits, slot=slot, env=env,
        unsafe=unsafe,
    )  # fmt: skip
    stdout_path, stderr_path = log_dir / "stdout.txt", log_dir / "stderr.txt"
    start = time.monotonic()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, **options)
        timed_out = False
        try:
            proc.wait(timeout=limits.wall_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _stop(proc)
    return SandboxResult(
        returncode=None if timed_out else proc.returncode,
        timed_out=timed_out,
        wall_s=time.monotonic() - start,
        stderr_tail=_tail(stderr_path),
        stdout_tail=_tail(stdout_path),
    )


class Conversation:
    """A sandboxed command spoken to one JSON line at a time (stdin) and answering on stdout.

    `ask(step, timeout)` sends a step and waits for the answer carrying the same "seq", at most
    `timeout` seconds and within the wall budget; None when none came (the command is then
    stopped: a sandbox that missed one answer is not trusted with the next step).
    """

    MAX_LINE = 256 * 1024 * 1024

    def __init__(self, command, *, workdir, ro_binds, limits, slot, env=None, log_dir,
                 unsafe=False):  # fmt: skip
        log_dir.mkdir(parents=True, exist_ok=True)
        argv, options = _launch(
            command, workdir=workdir, ro_binds=ro_binds, limits=limits, slot=slot, env=env,
            unsafe=unsafe,
        )  # fmt: skip
        self._stderr_path = log_dir / "stderr.txt"
        self._stderr = open(self._stderr_path, "wb")  # noqa: SIM115 (closed in close())
        self.start = time.monotonic()
        self.deadline = self.start + limits.wall_s
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, **options
        )
        self._buffer = b""
        self._seq = 0
        self._result: SandboxResult | None = None
        self.stopped: str | None = None  # why the conversation ended early

    def ask(self, step: dict, timeout: float) -> dict | None:
        if self.stopped:
            return None
        self._seq += 1
        try:
            self.proc.stdin.write((json.dumps({**step, "seq": self._seq}) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.stopped = "exited"
            return None
        until = min(time.monotonic() + timeout, self.deadline)
        while True:
            line = self._readline(until)
            if line is None:
                return None
            try:
                answer = json.loads(line)
            except ValueError:
                continue  # not ours
            if isinstance(answer, dict) and answer.get("seq") == self._seq:
                return answer

    def _readline(self, until: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = until - time.monotonic()
            if left <= 0:
                self.stopped = "timeout" if until < self.deadline else "wall_budget"
                self.close()
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                self.stopped = "exited"
                self.close()
                return None
            self._buffer += chunk
            if len(self._buffer) > self.MAX_LINE:
                self.stopped = "output_limit"
                self.close()
                return None
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def close(self) -> SandboxResult:
        if self._result is not None:
            return self._result
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=2)
        _stop(self.proc)
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        self.proc.stdout.close()
        self._stderr.close()
        self._result = SandboxResult(
            returncode=self.proc.returncode,
            timed_out=self.stopped in ("timeout", "wall_budget"),
            wall_s=time.monotonic() - self.start,
            stderr_tail=_tail(self._stderr_path),
            stdout_tail="",
        )
        return self._result
