"""Exclusive locks that die with their process: `flock` on a lock file that names its holder.

A workdir, a sweep root and a data cache each have one writer at a time. The lock is the kernel's
(`flock`), so a killed holder (kill -9 included) releases it at once; the file's text (PID, host, start
time) only says who holds it, for the message a second writer gets.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from scaling.errors import BusyError, ConfigError


@contextlib.contextmanager
def claim_folder(folder: Path, what: str, lock_name: str | None) -> Iterator[None]:
    """Create `folder` and, given a `lock_name`, hold the lock `folder/lock_name` inside the block (a second
    writer gets a BusyError naming this process). A path that cannot be such a folder (a file, under a file,
    read-only, too long) is a ConfigError naming `what` (e.g. "--workdir runs/a")."""
    with contextlib.ExitStack() as stack:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if lock_name:
                stack.enter_context(hold_lock(folder / lock_name, f"{what}"))
        except OSError as error:
            reason = "a file of that name exists" if isinstance(error, FileExistsError) else error.strerror or error
            raise ConfigError(f"{what} cannot be used ({reason}); give a folder this process can create and "
                              "write") from None
        yield


@contextlib.contextmanager
def hold_lock(path: Path, what: str, *, wait: bool = False) -> Iterator[None]:
    """Hold the exclusive lock on `path` inside the block.

    When another process holds it: with `wait`, say who holds it and wait for it; else raise BusyError
    naming the holder of `what` (e.g. "workdir runs/a").
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as file:
        if not _try_lock(file):
            holder = _holder(path)
            if not wait:
                raise BusyError(f"{what} is in use by {holder}; wait for it to finish, or stop that process "
                                f"(the lock {path} is released when it exits)")
            print(f"waiting for {what}, held by {holder}", file=sys.stderr, flush=True)
            fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        file.truncate()
        file.write(f"PID {os.getpid()} on host {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        file.flush()
        try:
            yield
        finally:
            file.truncate(0)
            fcntl.flock(file, fcntl.LOCK_UN)


def _try_lock(file) -> bool:
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(path: Path) -> str:
    """Who holds the lock, as its file says ('another process' while the holder has not written it yet)."""
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "another process"
