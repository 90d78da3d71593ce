"""The Ray cluster that ``--workers`` runs on: joining one (``--ray-address``), or starting a
private local one.

A local Ray that a2c starts itself (``a2c train --workers N`` without ``--ray-address``) is made
private with two of Ray's own environment settings, applied just before ``ray.init`` and put back
when the run shuts that Ray down ([`LocalRaySettings`][a2c.trainers.ray_cluster.LocalRaySettings]):

* **token authentication**, ``RAY_AUTH_MODE=token`` (unless ``RAY_AUTH_MODE`` is set already: an
  explicit ``disabled`` is obeyed, with a warning). The token is a fresh random one for this cluster
  in ``RAY_AUTH_TOKEN``, handed to Ray's processes in their environment and never written to disk,
  unless the user names one (``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``). A client without the
  token, or with another one, is refused by the cluster's GCS server.
* **loopback only**, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: Ray's single-machine mode (its default on
  macOS and Windows) gives the node the address 127.0.0.1, and then the GCS server, the raylet, the
  workers and this driver listen on 127.0.0.1 alone instead of on every interface; the dashboard is
  not started.

Joining a cluster (``--ray-address``) uses Ray's settings as they are: an authenticated cluster needs
``RAY_AUTH_MODE=token`` and its token (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or
``~/.ray/auth_token``) in the environment; a refusal says so in one line. a2c never sends a token
to an address on its own, as Ray itself does not.

Token authentication came with Ray 2.52; an older Ray would ignore ``RAY_AUTH_MODE`` and start a
cluster that anyone who reaches its ports can run code on, so a2c refuses it
([`check_ray_version`][a2c.trainers.ray_cluster.check_ray_version]).
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
from typing import Any

from a2c.common.errors import A2CError

MIN_RAY = (2, 52)  # the first Ray with token authentication (RAY_AUTH_MODE=token)
AUTH_MODE = "RAY_AUTH_MODE"
AUTH_TOKEN = "RAY_AUTH_TOKEN"
AUTH_TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"
# Ray's switch for clusters of several machines; "0" (its default on macOS and Windows) keeps a local
# Ray on 127.0.0.1.
MULTI_NODE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class ClusterError(A2CError, ConnectionError):
    """Ray is missing or too old, or the cluster cannot be reached or refuses this client."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError("--workers needs Ray: pip install 'a2c[ray]'") from None
    check_ray_version(ray.__version__)
    return ray


def check_ray_version(version: str) -> None:
    """ClusterError for a Ray older than [`MIN_RAY`][a2c.trainers.ray_cluster.MIN_RAY] (no token authentication)."""
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    if tuple(parts) < MIN_RAY:
        need = ".".join(map(str, MIN_RAY))
        raise ClusterError(
            f"--workers needs Ray >= {need} (token authentication; an older Ray starts a cluster without it); "
            f"this is Ray {version}: pip install -U 'a2c[ray]'"
        )


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when nothing listens at ``host:port`` (``ray.init`` would
    retry for a minute and then print a traceback)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--ray-address {address!r} is not host:port (or 'auto')")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None


class LocalRaySettings:
    """Token authentication and loopback for a local Ray that a2c starts, undone by
    [`restore`][a2c.trainers.ray_cluster.LocalRaySettings.restore] (see the module's docstring)."""

    def __init__(self) -> None:
        self._saved = {name: os.environ.get(name) for name in (AUTH_MODE, AUTH_TOKEN, MULTI_NODE)}
        self._multi_node: bool | None = None
        self.applied = False

    def apply(self) -> None:
        """Set ``RAY_AUTH_MODE=token`` (unless set), a fresh ``RAY_AUTH_TOKEN`` (unless the user names a
        token) and loopback only, for ``ray.init`` and the processes it starts."""
        mode = os.environ.get(AUTH_MODE)
        if mode is None:
            os.environ[AUTH_MODE] = "token"
        elif mode.lower() != "token":
            print(
                f"a2c train: warning: {AUTH_MODE}={mode} in the environment: the local Ray starts without token "
                "authentication (any local user can run code on it)",
                file=sys.stderr,
            )
        if os.environ.get(AUTH_MODE, "").lower() == "token" and not (
            os.environ.get(AUTH_TOKEN) or os.environ.get(AUTH_TOKEN_PATH)
        ):
            os.environ[AUTH_TOKEN] = secrets.token_hex(32)
        os.environ[MULTI_NODE] = "0"
        constants: Any = sys.modules.get("ray._private.ray_constants")
        if constants is not None and hasattr(constants, "ENABLE_RAY_CLUSTER"):
            # Ray reads the variable when it is imported: tell a Ray this process imported already.
            self._multi_node = bool(constants.ENABLE_RAY_CLUSTER)
            constants.ENABLE_RAY_CLUSTER = False
        self.applied = True
        _reload_ray_config()

    def restore(self) -> None:
        """Put the environment (and Ray's cached view of it) back as it was before
        [`apply`][a2c.trainers.ray_cluster.LocalRaySettings.apply]."""
        if not self.applied:
            return
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        constants: Any = sys.modules.get("ray._private.ray_constants")
        if self._multi_node is not None and constants is not None:
            constants.ENABLE_RAY_CLUSTER = self._multi_node
        self.applied = False
        _reload_ray_config()


def _reload_ray_config() -> None:
    """Make this process's Ray read ``RAY_AUTH_MODE`` and the token again (it caches both the
    first time it needs them; Ray's own ``ray.init`` refreshes them the same way)."""
    raylet: Any = sys.modules.get("ray._raylet")
    if raylet is None or not hasattr(raylet, "Config") or not hasattr(raylet, "AuthenticationTokenLoader"):
        return  # Ray is not imported (it reads them when it is), or reads them afresh
    raylet.Config.initialize("")
    raylet.AuthenticationTokenLoader.instance().reset_cache()


def _auth_refused(error: BaseException) -> bool:
    """Whether a failed ``ray.init`` (or its causes) was the cluster refusing our token."""
    seen: BaseException | None = error
    while seen is not None:
        text = f"{type(seen).__name__} {seen}"
        if "Authentication" in text or "Unauthenticated" in text or "InvalidAuthToken" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def start_ray(address: str, workers: int) -> LocalRaySettings | None:
    """Join the cluster at ``address``, or start a private local Ray with a CPU per worker (at
    least the machine's). Return what this call changed when it started or joined a Ray (the
    caller shuts that Ray down and then restores the settings), None when a Ray this process
    already runs (a notebook's, a test's) is used as it is."""
    ray = import_ray()
    if address and address != "auto":
        check_reachable(address)  # also with a Ray already running here: the user named this cluster
    if ray.is_initialized():
        return None
    quiet = dict(logging_level="ERROR", log_to_driver=False, configure_logging=True)
    settings = LocalRaySettings()
    if address:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as e:
            if _auth_refused(e):
                raise ClusterError(
                    f"the Ray cluster at {address} refused this client's token: set {AUTH_MODE}=token and the "
                    f"cluster's token in {AUTH_TOKEN} or {AUTH_TOKEN_PATH} (or ~/.ray/auth_token)"
                ) from None
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ClusterError(f"cannot join the Ray cluster at {address}: {first}") from None
        return settings
    settings.apply()
    try:
        ray.init(num_cpus=max(os.cpu_count() or 1, workers), include_dashboard=False, **quiet)
    except BaseException:
        settings.restore()
        raise
    return settings
