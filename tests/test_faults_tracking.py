"""What leaves the machine: an offline wandb run touches no network and writes nothing in the home folder,
online without credentials fails before anything starts, and the compilation cache has a size bound."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from scaling.errors import ConfigError
from scaling.runtime.compile_cache import MAX_SIZE_ENV, max_cache_bytes, persistent_compilation_cache

# Runs in the child before wandb is imported: every DNS lookup or connection the Python process makes through
# the socket module to anything but the loopback goes, as one line, to the file named by argv[1].
_AUDIT = textwrap.dedent("""
    import ipaddress, sys

    _log = open(sys.argv[1], "a", buffering=1)

    def _local(host):
        if host in (None, "", "localhost") or isinstance(host, bytes) and host == b"localhost":
            return True
        try:
            return ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host).is_loopback
        except ValueError:
            return False

    def _hook(event, args):
        if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
            host = args[0]
        elif event in ("socket.connect", "socket.sendto", "socket.sendmsg") and isinstance(args[-1], tuple):
            host = args[-1][0]
        else:
            return
        if not _local(host):
            _log.write(f"{event} {host!r}\\n")

    sys.addaudithook(_hook)
""")

# Then checks the credentials of an online run three times (none; a netrc entry for the server; WANDB_API_KEY),
# makes an offline run in the workdir argv[2] that logs three steps, and prints the three outcomes.
_CHILD = _AUDIT + textwrap.dedent("""
    import json, os
    from pathlib import Path
    from scaling.errors import ConfigError
    from scaling.workdir.tracking import WandbTracker, check_wandb_credentials

    def outcome():
        try:
            check_wandb_credentials("online")
        except ConfigError as error:
            return str(error)
        return "ok"

    os.environ["WANDB_BASE_URL"] = "https://wandb.example.org"
    netrc = Path.home() / ".netrc"
    outcomes = [outcome()]
    netrc.write_text("machine wandb.example.org login user password " + "n" * 40 + "\\n")
    netrc.chmod(0o600)
    outcomes.append(outcome())
    netrc.unlink()
    os.environ["WANDB_API_KEY"] = "k" * 40
    outcomes.append(outcome())
    del os.environ["WANDB_API_KEY"]
    check_wandb_credentials("offline")

    tracker = WandbTracker(Path(sys.argv[2]), "offline", "faults", None, "offline-run", {"lr": 0.1})
    for step in range(1, 4):
        tracker.log(step, {"loss": 1.0 / step})
    tracker.close()
    print(json.dumps(outcomes))
""")


def _isolated_env(home: Path, proxy_port: int) -> dict[str, str]:
    """This environment without wandb, proxy, netrc or XDG settings; HOME at `home`; every HTTP(S) request
    (Python's and wandb-core's, both honour the proxy variables) sent to the local port `proxy_port`."""
    keep = {key: value for key, value in os.environ.items()
            if not key.startswith(("WANDB_", "XDG_")) and key.lower() not in
            ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "netrc")}
    proxy = f"http://127.0.0.1:{proxy_port}"
    return keep | {"HOME": str(home), "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "ALL_PROXY": proxy,
                   "http_proxy": proxy, "https_proxy": proxy, "all_proxy": proxy}


def _trapped(trap: socket.socket) -> list[bytes]:
    """The first bytes of every connection made to the listening socket `trap` so far."""
    trap.setblocking(False)
    seen = []
    while True:
        try:
            connection, _ = trap.accept()
        except BlockingIOError:
            return seen
        with connection:
            connection.settimeout(1)
            seen.append(connection.recv(200))


@pytest.fixture(scope="module")
def wandb_child(tmp_path_factory) -> dict:
    """Run `_CHILD` once in a fresh Python (HOME an empty folder, HTTP(S) proxies at a local trap): its
    process, HOME, workdir, credential outcomes, non-loopback socket events and requests that reached the trap."""
    root = tmp_path_factory.mktemp("wandb-child")
    home, workdir, events = root / "home", root / "run", root / "socket-events.txt"
    home.mkdir()
    workdir.mkdir()
    events.touch()
    with socket.create_server(("127.0.0.1", 0), backlog=16) as trap:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(events), str(workdir)], cwd=root,
                              env=_isolated_env(home, trap.getsockname()[1]), capture_output=True, text=True,
                              timeout=120)
        requests = _trapped(trap)
    assert done.returncode == 0, done.stderr
    return {"home": home, "workdir": workdir, "outcomes": json.loads(done.stdout.splitlines()[-1]),
            "events": events.read_text().splitlines(), "requests": requests}


def test_offline_run_touches_no_network_and_keeps_wandb_logs_in_the_workdir(wandb_child):
    assert wandb_child["events"] == []  # no DNS lookup or connection beyond the loopback from the Python process
    assert wandb_child["requests"] == []  # no HTTP(S) request from it or from wandb-core
    home, workdir = wandb_child["home"], wandb_child["workdir"]
    assert [str(path.relative_to(home)) for path in home.rglob("*")] == []  # e.g. no ~/.cache/wandb/logs
    assert list(workdir.glob("wandb/cache/**/core-debug-*.log"))  # the service's log, in the workdir instead
    assert list(workdir.glob("wandb/offline-run-*/run-*.wandb"))  # the run itself was recorded


def test_online_without_credentials_fails_before_the_run_and_names_the_fixes(wandb_child):
    no_key, with_netrc, with_key = wandb_child["outcomes"]
    assert "\n" not in no_key and "wandb.example.org" in no_key
    for fix in ("wandb login", "WANDB_API_KEY", "--wandb offline"):
        assert fix in no_key
    assert (with_netrc, with_key) == ("ok", "ok")


def test_compilation_cache_is_pruned_to_its_bound_least_recently_used_first(tmp_path, monkeypatch):
    cache = tmp_path / "xla"
    (cache / "autotune").mkdir(parents=True)
    names = ["a-cache", "b-cache", "autotune/c", "d-cache", "e-cache"]  # last used in this order, 1000 bytes each
    for age, name in enumerate(reversed(names)):
        (cache / name).write_bytes(b"x" * 1000)
        os.utime(cache / name, (1_000_000 - age * 1000, 1_000_000 - age * 1000))
    monkeypatch.setenv(MAX_SIZE_ENV, "0.0000025")  # GB: 2,500 bytes, so the two most recent entries stay
    before = jax.config.jax_compilation_cache_dir
    with persistent_compilation_cache(str(cache)) as counts:
        assert sorted(str(path.relative_to(cache)) for path in cache.rglob("*") if path.is_file()) == \
            ["d-cache", "e-cache"]
        assert jax.config.jax_compilation_cache_dir == str(cache)
        jax.jit(lambda x: x * 3.0 + 0.25)(jnp.arange(7.0)).block_until_ready()
        assert counts()["misses"] >= 1 and len(list(cache.iterdir())) > 3  # the cache is in use: new entries
    assert jax.config.jax_compilation_cache_dir == before


def test_compilation_cache_bound_defaults_to_4_gb_and_rejects_a_bad_value(monkeypatch):
    monkeypatch.delenv(MAX_SIZE_ENV, raising=False)
    assert max_cache_bytes() == 4_000_000_000
    monkeypatch.setenv(MAX_SIZE_ENV, "0.5")
    assert max_cache_bytes() == 500_000_000
    for bad in ("4G", "0", "-1", "nan"):
        monkeypatch.setenv(MAX_SIZE_ENV, bad)
        with pytest.raises(ConfigError, match=f"{MAX_SIZE_ENV}=.*e.g. 4"):
            max_cache_bytes()
