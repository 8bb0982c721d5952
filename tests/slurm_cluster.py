"""A throwaway one-node Slurm cluster with accounting, for the Slurm launcher's tests.

Installs the Debian packages it lacks, runs munged, a private MariaDB, slurmdbd, slurmctld and slurmd
by hand (no systemd) with all their state, logs and sockets in one folder, and stops them by PID.
Slurm clients (and so submitit) find it through /etc/slurm/slurm.conf, restored afterwards.
Whatever cannot be installed or started skips the tests, with what failed as the reason; with
SCALING_REQUIRE_SLURM=1 (as in CI, .ci/run) it fails them instead, so that they cannot silently not run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

PACKAGES = {  # program: the Debian package that provides it
    "munged": "munge", "mungekey": "munge", "mariadbd": "mariadb-server-core", "slurmdbd": "slurmdbd",
    "slurmctld": "slurmctld", "slurmd": "slurmd", "sinfo": "slurm-client",
}
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by tests/slurm_cluster.py; removed when its tests end\n"
START_TIMEOUT_S = 30.0
REQUIRE = "SCALING_REQUIRE_SLURM"  # set to 1: a cluster that cannot start fails the tests instead of skipping them


@contextlib.contextmanager
def slurm_cluster(folder: Path) -> Iterator[None]:
    """Run a one-node cluster of this machine's CPUs (default partition `debug`) until the block ends."""
    if os.geteuid() != 0:
        _unavailable("the Slurm test cluster needs root (slurmd runs jobs as any user)")
    programs = _install()
    node = _node_line(_checked([programs["slurmd"], "-C"]))
    ports = dict(zip(("slurmctld", "slurmd", "slurmdbd", "mariadb"), _free_ports(4)))
    sock = folder / "munge" / "munge.socket"
    env = {**os.environ, "SLURM_CONF": str(_write_configs(folder, node, ports, sock))}
    _checked([programs["mungekey"], "--create", f"--keyfile={folder / 'munge.key'}"])
    sock.parent.mkdir(mode=0o755)  # munged wants a socket folder that all may enter
    (folder / "mariadb").mkdir()
    with contextlib.ExitStack() as stack:
        stack.callback(_restore, SYSTEM_CONF, _previous(SYSTEM_CONF))
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(env["SLURM_CONF"], SYSTEM_CONF)
        for name, args, ready in _daemons(folder, node, ports, sock, env):
            log = folder / f"{name}.out"
            with log.open("w") as out:
                process = subprocess.Popen(
                    [programs[name], *args], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            stack.callback(_stop, process)
            _wait(name, process, ready, log)
        stack.callback(_cancel_jobs, env)
        yield


def add_account(account: str, qos: str) -> None:
    """Create an account and a QoS in the cluster's accounting and give root both (Slurm replaces an account or QoS
    it does not know by the user's defaults)."""
    for command in (["add", "account", account], ["add", "qos", qos],
                    ["add", "user", "root", f"account={account}", f"qos=normal,{qos}"]):
        subprocess.run(["sacctmgr", "--immediate", *command], capture_output=True, text=True, check=True)


def _daemons(
    folder: Path, node: str, ports: dict[str, int], sock: Path, env: dict[str, str]
) -> list[tuple[str, list[str], Callable[[], bool]]]:
    """Each daemon in start order: its program, its arguments (all in the foreground) and its readiness test."""
    return [
        ("munged", ["--foreground", "--force", f"--key-file={folder / 'munge.key'}", f"--socket={sock}",
                    f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
                    f"--seed-file={folder / 'munged.seed'}"], sock.exists),
        ("mariadbd", ["--no-defaults", "--user=root", f"--datadir={folder / 'mariadb'}", f"--port={ports['mariadb']}",
                      "--bind-address=127.0.0.1", f"--socket={folder / 'mariadb.sock'}", "--skip-grant-tables",
                      "--skip-log-bin", "--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=0"],
         lambda: _listening(ports["mariadb"])),
        ("slurmdbd", ["-D"], lambda: _listening(ports["slurmdbd"])),
        ("slurmctld", ["-D"], lambda: _listening(ports["slurmctld"])),
        ("slurmd", ["-D", "-N", node.split()[0].removeprefix("NodeName=")],
         lambda: _run(["sinfo", "-h", "-o", "%t"], env) == "idle" and _run(["sacct", "-n"], env) is not None),
    ]


def _install() -> dict[str, str]:
    """The path of every program, installing the packages of the missing ones."""
    missing = sorted({package for program, package in PACKAGES.items() if not _which(program)})
    if missing:
        if not shutil.which("apt-get"):
            _unavailable(f"Slurm is not installed ({', '.join(missing)} missing) and there is no apt-get to install it")
        error = _apt_install(missing)
        if error:
            _unavailable(f"apt-get cannot install {' '.join(missing)}: {error}")
    return {program: _which(program) for program in PACKAGES}


def _apt_install(packages: list[str]) -> str | None:
    """Install `packages`, refreshing the package lists once if that fails; the error, or None."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    for attempt in ([], ["apt-get", "update", "-q"]):
        if attempt:
            subprocess.run(attempt, env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode == 0:
            return None
    return (done.stderr.strip() or done.stdout.strip())[-1000:]


def _unavailable(reason: str) -> NoReturn:
    """Skip the tests for `reason`, or fail them where the environment requires the cluster."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} ({REQUIRE}=1 requires the Slurm tests to run)", pytrace=False)
    pytest.skip(reason)


def _which(program: str) -> str | None:
    return shutil.which(program, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


def _checked(command: list[str]) -> str:
    """The output of a setup command; the cluster is `_unavailable` if it fails."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        _unavailable(f"{' '.join(command)} failed with status {done.returncode}: {done.stderr.strip()[-1000:]}")
    return done.stdout


def _node_line(slurmd_config: str) -> str:
    """The NodeName line of `slurmd -C` (this machine's hardware), claiming 90% of its memory."""
    fields = slurmd_config.splitlines()[0].split()
    memory = next(field for field in fields if field.startswith("RealMemory="))
    fields[fields.index(memory)] = f"RealMemory={int(int(memory.split('=')[1]) * 0.9)}"
    return " ".join(fields)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _write_configs(folder: Path, node: str, ports: dict[str, int], sock: Path) -> Path:
    """Write slurm.conf and slurmdbd.conf into `folder`; return the path of slurm.conf."""
    host = socket.gethostname().split(".")[0]
    auth = f"AuthType=auth/munge\nAuthInfo=socket={sock},cred_expire=5\n"
    slurm_conf = folder / "slurm.conf"
    slurm_conf.write_text(MARK + auth + f"""\
ClusterName=test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmctldPort={ports['slurmctld']}
SlurmdPort={ports['slurmd']}
StateSaveLocation={folder / 'state'}
SlurmdSpoolDir={folder / 'spool'}
SlurmctldPidFile={folder / 'slurmctld.pid'}
SlurmdPidFile={folder / 'slurmd.pid'}
SlurmctldLogFile={folder / 'slurmctld.log'}
SlurmdLogFile={folder / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={ports['slurmdbd']}
AccountingStoragePass={sock}
KillWait=5
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=2
MailProg=/bin/true
{node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
    dbd_conf = folder / "slurmdbd.conf"  # slurmdbd reads it next to $SLURM_CONF
    dbd_conf.touch(mode=0o600)
    dbd_conf.write_text(auth + f"""\
DbdHost={host}
DbdAddr=127.0.0.1
DbdPort={ports['slurmdbd']}
SlurmUser=root
PidFile={folder / 'slurmdbd.pid'}
LogFile={folder / 'slurmdbd.log'}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports['mariadb']}
StorageUser=root
StorageLoc=slurm_acct_db
""")
    return slurm_conf


def _wait(name: str, process: subprocess.Popen, ready: Callable[[], bool], log: Path) -> None:
    """Return once `ready()`; the cluster is `_unavailable` if the daemon exits or is not ready in time."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        if process.poll() is not None:
            _unavailable(f"{name} exited with status {process.returncode} at start: {_tail(log)}")
        if time.monotonic() > deadline:
            _unavailable(f"{name} was not ready after {START_TIMEOUT_S:.0f} s: {_tail(log)}")
        time.sleep(0.1)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-1500:].strip() or "(no output)"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _run(command: list[str], env: dict[str, str]) -> str | None:
    """The stripped output of a Slurm client command, or None if it fails."""
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def _cancel_jobs(env: dict[str, str]) -> None:
    """Cancel every job and wait (a little) for them to end, so that no job outlives the cluster."""
    _run(["scancel", "--user=root"], env)
    deadline = time.monotonic() + 15
    while _run(["squeue", "-h"], env) and time.monotonic() < deadline:
        time.sleep(0.5)


def _stop(process: subprocess.Popen) -> None:
    """Stop a daemon and its helpers (slurmctld forks slurmscriptd): its process group, led by its PID."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _previous(path: Path) -> bytes | None:
    """The file's content, unless it is missing or a leftover of an earlier test session."""
    if not path.exists() or path.read_text(errors="replace").startswith(MARK):
        return None
    return path.read_bytes()


def _restore(path: Path, content: bytes | None) -> None:
    if content is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(content)
