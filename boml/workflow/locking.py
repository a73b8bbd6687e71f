"""The lock of a run directory: one training session at a time writes its checkpoints and results.

The lock is the file ``<run_dir>/run.lock``, created exclusively (``O_CREAT | O_EXCL``) and holding
the owner's pid, host and process start time as JSON. A second session on the directory is refused
with :class:`RunLockedError` naming the owner. A lock whose owner is dead (same host, no process
with that pid, or a pid reused by a process started later) is stale: it is taken over with a
message. The lock is released when the session ends, also on exceptions and signals.
"""
import json
import os
import socket
import time
from typing import Callable, Optional

from boml.errors import BOMLError

LOCK_FILE = "run.lock"


class RunLockedError(BOMLError, RuntimeError):
    """Another training session holds the lock of the run directory."""


def _start_time(pid: int) -> Optional[str]:
    """The start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), or None."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: Optional[str]) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    now = _start_time(pid)
    return started is None or now is None or now == started


class RunLock:
    """Context manager holding the lock of ``run_dir`` (created if needed).

    Args:
        run_dir: the run directory.
        log: receives one line when a stale lock is taken over.

    Raises:
        RunLockedError: (on entry) a live session, or a session on another host, holds the lock.
    """

    def __init__(self, run_dir: str, log: Callable[[str], None] = print):
        self.run_dir, self.log = run_dir, log
        self.path = os.path.join(run_dir, LOCK_FILE)
        self.owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid()),
                      "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        self.held = False

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump(self.owner, handle)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def _read_owner(self):
        try:
            with open(self.path) as handle:
                owner = json.load(handle)
            return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None
        except (OSError, ValueError):
            return None

    def acquire(self) -> "RunLock":
        """Takes the lock (see the class); returns self."""
        os.makedirs(self.run_dir, exist_ok=True)
        if not self._create():
            owner = self._read_owner()
            if owner is None:  # being written by its owner right now, or garbage: look once more
                time.sleep(0.2)
                owner = self._read_owner()
            if owner is not None and (owner.get("host") != self.owner["host"]
                                      or _alive(owner["pid"], owner.get("started"))):
                where = "this host" if owner.get("host") == self.owner["host"] else f"host {owner.get('host')!r}"
                raise RunLockedError(
                    f"The run directory {self.run_dir} is in use by process {owner['pid']} on {where} (since "
                    f"{owner.get('since', '?')}); two sessions would overwrite each other's checkpoints. Wait for it "
                    f"to finish, or use another --name or --logdir. If that process is certainly gone, delete "
                    f"{self.path}."
                )
            what = "unreadable" if owner is None else f"of process {owner['pid']}, which is no longer running"
            self.log(f"taking over the stale lock {self.path} ({what})")
            os.remove(self.path)
            if not self._create():
                raise RunLockedError(f"Another session took the lock {self.path} at the same time; retry later.")
        self.held = True
        return self

    def release(self) -> None:
        """Removes the lock file if this object holds it."""
        if self.held:
            self.held = False
            owner = self._read_owner()
            if owner is not None and owner.get("pid") == self.owner["pid"]:
                os.remove(self.path)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


__all__ = ["LOCK_FILE", "RunLockedError", "RunLock"]
