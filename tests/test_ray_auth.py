"""The local Ray that ``a2c train --workers`` starts is private (issue 31): token authentication
and loopback only; clients without the token or with a wrong one are refused while the run trains;
``--ray-address`` joins an authenticated cluster with the token and says in one line when refused.

Probe clients are separate processes: one process holds one Ray connection. They run with
``RAY_NUM_REDIS_GET_RETRIES=3`` (Ray's own setting) so that a refused client gives up after about
3 s instead of 20, and with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: a driver joining a cluster that
lives on 127.0.0.1 must itself take that address to find its node's raylet."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from a2c.config.resolve import make_config  # noqa: E402
from a2c.run.train import train  # noqa: E402
from a2c.trainers.ray_cluster import (  # noqa: E402
    AUTH_MODE,
    AUTH_TOKEN,
    MULTI_NODE,
    ClusterError,
    LocalRaySettings,
    check_ray_version,
    start_ray,
)

REPO = Path(__file__).resolve().parents[1]
REFUSED = "Authentication token is missing or incorrect"
JOIN = "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); print('JOINED', flush=True)"
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def client_env(**auth: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    return {**env, "RAY_NUM_REDIS_GET_RETRIES": "3", MULTI_NODE: "0", "PYTHONPATH": str(REPO), **auth}


def external_ip() -> str | None:
    """This machine's address on its default route (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def listening_addresses() -> set[str]:
    """The addresses that this process and its children (Ray's GCS server, raylet, workers) listen on."""
    me = psutil.Process()
    found = set()
    for proc in [me, *me.children(recursive=True)]:
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add(conn.laddr.ip)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_ray_without_token_authentication_is_refused():
    with pytest.raises(ClusterError, match=r"needs Ray >= 2\.52 .*this is Ray 2\.51\.2"):
        check_ray_version("2.51.2")
    for version in ("2.52.0", "2.60.0", "3.0.0.dev0"):
        check_ray_version(version)


def test_local_settings_are_put_back(monkeypatch):
    monkeypatch.delenv(AUTH_MODE, raising=False)
    monkeypatch.delenv(AUTH_TOKEN, raising=False)
    monkeypatch.setenv(MULTI_NODE, "1")
    multi_node = ray._private.ray_constants.ENABLE_RAY_CLUSTER
    settings = LocalRaySettings()
    settings.apply()
    assert os.environ[AUTH_MODE] == "token" and len(os.environ[AUTH_TOKEN]) == 64 and os.environ[MULTI_NODE] == "0"
    assert ray._private.ray_constants.ENABLE_RAY_CLUSTER is False
    settings.restore()
    assert AUTH_MODE not in os.environ and AUTH_TOKEN not in os.environ and os.environ[MULTI_NODE] == "1"
    assert ray._private.ray_constants.ENABLE_RAY_CLUSTER is multi_node


def test_local_ray_refuses_clients_without_the_token_and_the_run_trains(tmp_path):
    """``train`` with ``workers=2`` and no Ray running starts its own, as ``a2c train --workers 2``
    does; while it trains, probe clients try to join it."""
    assert not ray.is_initialized()
    seen: dict[str, object] = {}

    def probe(update: int, step: int) -> None:
        if update != 1:
            return
        gcs = ray.get_runtime_context().gcs_address
        token = os.environ[AUTH_TOKEN]
        seen["gcs"], seen["node"], seen["listening"] = gcs, ray.util.get_node_ip_address(), listening_addresses()
        clients = {
            "no token": client_env(),
            "wrong token": client_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * 64),
            "the token": client_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token),
        }
        procs = {
            name: subprocess.Popen(
                [sys.executable, "-c", JOIN, gcs], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            for name, env in clients.items()
        }
        seen["clients"] = {name: (p.communicate(timeout=180)[0], p.returncode) for name, p in procs.items()}
        port = int(gcs.rsplit(":", 1)[1])
        ip = external_ip()
        if ip is not None:
            with pytest.raises(OSError):
                socket.create_connection((ip, port), timeout=3).close()
            seen["external"] = ip

    cfg = make_config(
        {
            "workers": 2,
            "envs_per_worker": 2,
            "n_steps": 5,
            "total_steps": 400,
            "eval_every": 0,
            "final_eval_episodes": 2,
            "progress": False,
            "run_dir": str(tmp_path / "run"),
        }
    )
    before = {name: os.environ.get(name) for name in (AUTH_MODE, AUTH_TOKEN, MULTI_NODE)}
    result = train(cfg, quiet=True, callback=probe)

    assert result.summary["total_steps"] == 400 and result.summary["workers"] == 2
    assert not ray.is_initialized()
    assert {name: os.environ.get(name) for name in before} == before  # the user's settings are back
    assert str(seen["gcs"]).startswith("127.0.0.1:") and seen["node"] == "127.0.0.1"
    assert seen["listening"] and set(seen["listening"]) <= LOOPBACK, seen["listening"]
    clients = seen["clients"]
    assert isinstance(clients, dict)
    for name in ("no token", "wrong token"):
        output, code = clients[name]
        assert code != 0 and REFUSED in output and "JOINED" not in output, (name, output)
    output, code = clients["the token"]
    assert code == 0 and "JOINED" in output, output


@pytest.fixture(scope="module")
def private_cluster():
    """A local Ray started as a2c starts one (2 CPUs here), for other processes to join."""
    assert not ray.is_initialized()
    settings = start_ray("", 2)
    assert settings is not None
    yield ray.get_runtime_context().gcs_address, os.environ[AUTH_TOKEN]
    ray.shutdown()
    settings.restore()


def a2c_train(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "a2c", "train", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=400
    )


def test_ray_address_joins_an_authenticated_cluster_with_its_token(private_cluster, tmp_path):
    gcs, token = private_cluster
    common = ["--ray-address", gcs, "--workers", "2", "--envs-per-worker", "2", "--n-steps", "5"]
    common += ["--total-steps", "200", "--eval-every", "0", "--final-eval-episodes", "0", "--no-progress"]

    refused = a2c_train(*common, "--run-dir", str(tmp_path / "refused"), env=client_env())
    last = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert f"the Ray cluster at {gcs} refused this client's token: set RAY_AUTH_MODE=token" in last, last
    assert not (tmp_path / "refused").exists()

    with_token = client_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    joined = a2c_train(*common, "--run-dir", str(tmp_path / "joined"), env=with_token)
    assert joined.returncode == 0, joined.stderr
    assert (tmp_path / "joined" / "summary.json").is_file()
