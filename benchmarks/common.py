"""Helpers shared by the benchmark scripts (bench_cartpole.py, bench_fused.py).

Both scripts run every training run in a fresh subprocess, read our trainers'
training clock back from a run directory, train Stable-Baselines3's A2C under the same
evaluation protocol and summarise seeds with medians where "never solved" counts; one
copy of each of those pieces lives here so that the two benchmarks measure the same
way. The scripts sit next to this file, so ``import common`` works both when they are
run as ``python benchmarks/bench_x.py`` and in their ``--worker`` subprocesses (the
script's directory is ``sys.path[0]``).

Importing this module needs neither torch nor Stable-Baselines3 (imported inside
:func:`train_sb3` only), nor TensorFlow (``a2c.artifacts.evaluate`` is imported there too).
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- statistics
def median_censored(values: Iterable[float | None]) -> float | None:
    """Median where None means 'never reached' (+infinity); None if the median is infinite
    or there are no values. Runs that never solve must pull the median up, not vanish."""
    key = [math.inf if v is None else v for v in values]
    if not key:
        return None
    m = statistics.median(key)
    return None if math.isinf(m) else m


def median_of_known(values: Iterable[float | None]) -> float | None:
    """Median of the values that are not None (None if there are none): for figures
    where None means 'not measured' rather than 'never reached'."""
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def column_medians(
    rows: Iterable[Mapping[str, Any]],
    keys: Iterable[str],
    median: Callable[[Iterable[float | None]], float | None] = median_censored,
) -> dict[str, float | None]:
    """``{key: median(row[key] for each row)}`` in ``keys`` order (summary tables over seeds)."""
    rows = list(rows)
    return {k: median([r[k] for r in rows]) for k in keys}


def fmt(v: Any, spec: str = ".0f", none: str = "n/a") -> str:
    """``format(v, spec)``, or ``none`` for a missing figure (markdown table cells)."""
    return none if v is None else format(v, spec)


# --------------------------------------------------------------------------- run directories
def read_eval_clock(run_dir: Path) -> list[dict[str, Any]]:
    """Evaluation points of one of our run directories, each with the training clock.

    The clock is evaluations.csv's ``time/elapsed_seconds`` (training time, evaluations
    excluded, as the run driver writes it); runs written before that column existed
    fall back to metrics.csv's column of the same name at the evaluation's global_step
    (the benchmarks configure a metrics row on every evaluation step). A repeated step (the final evaluation of the
    same model with the same seeds) is kept once, the first time.
    """
    with open(run_dir / "metrics.csv", newline="") as f:
        clock = {int(r["global_step"]): float(r["time/elapsed_seconds"]) for r in csv.DictReader(f)}
    evals: list[dict[str, Any]] = []
    seen: set[int] = set()
    with open(run_dir / "evaluations.csv", newline="") as f:
        for r in csv.DictReader(f):
            step = int(r["global_step"])
            if step in seen:
                continue
            seen.add(step)
            if r.get("time/elapsed_seconds") not in (None, ""):
                seconds = float(r["time/elapsed_seconds"])
            elif step in clock:
                seconds = clock[step]
            else:
                raise SystemExit(f"{run_dir}: no metrics.csv row at evaluation step {step}")
            evals.append(
                {
                    "global_step": step,
                    "train_seconds": seconds,
                    "mean_return": float(r["eval/mean_return"]),
                    "min_return": float(r["eval/min_return"]),
                }
            )
    return evals


# --------------------------------------------------------------------------- machine
def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (None where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def package_versions(names: Iterable[str], source: Literal["metadata", "import"] = "metadata") -> dict[str, str | None]:
    """Installed versions, None where missing. ``metadata`` reads distribution metadata
    (nothing imported); ``import`` imports each module and reads ``__version__`` (what
    bench_fused.py has always recorded, so its reports stay comparable)."""
    versions: dict[str, str | None] = {}
    if source == "metadata":
        from importlib import metadata

        for name in names:
            try:
                versions[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                versions[name] = None
    else:
        for name in names:
            try:
                versions[name] = __import__(name).__version__
            except Exception:  # noqa: BLE001 - optional packages
                versions[name] = None
    return versions


def git(*args: str, cwd: Path = REPO_ROOT) -> str | None:
    """``git ARGS`` output with trailing whitespace removed (leading kept: porcelain
    status lines start with a space); None if git could not be run."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10).stdout.rstrip()
    except (OSError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------- subprocess workers
class WorkerFailed(RuntimeError):
    """A worker subprocess exited non-zero or wrote no result."""

    def __init__(self, spec: dict[str, Any], returncode: int, stderr: str) -> None:
        super().__init__(f"worker failed with status {returncode}: {spec}\n{stderr}")
        self.spec, self.returncode, self.stderr = spec, returncode, stderr


def run_worker(
    script: Path, spec: dict[str, Any], env: Mapping[str, str] | None = None, verbose: bool = False, timed: bool = False
) -> dict[str, Any]:
    """Run ``script --worker SPEC`` in a fresh interpreter (same executable) and return
    the JSON it writes to ``spec["result"]``.

    A fresh process per training run keeps frameworks apart and makes thread settings
    take effect. ``spec`` gets ``result`` and, unless given, ``run_dir`` in a temporary
    directory removed afterwards; ``env`` is laid over the environment (the repository
    root goes first on PYTHONPATH so that ``a2c`` imports even without an install).
    ``timed`` adds the parent's ``wall_seconds`` and the 1-minute load average at start
    and end (``load_start``, ``load_end``). Raises :class:`WorkerFailed`, whose
    ``stderr`` is the worker's (empty with ``verbose``, which shows its output instead).
    """
    with tempfile.TemporaryDirectory(prefix="a2c-bench-") as tmp:
        result_path = Path(tmp) / "result.json"
        spec = {**spec, "result": str(result_path)}
        spec.setdefault("run_dir", str(Path(tmp) / "run"))
        full_env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
            **(env or {}),
        }
        load0, t0 = os.getloadavg()[0], time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(Path(script).resolve()), "--worker", json.dumps(spec)],
            cwd=REPO_ROOT,
            env=full_env,
            capture_output=not verbose,
            text=True,
        )
        if proc.returncode != 0 or not result_path.exists():
            raise WorkerFailed(spec, proc.returncode, "" if verbose else (proc.stderr or ""))
        result = json.loads(result_path.read_text())
    if timed:
        result.update(wall_seconds=time.perf_counter() - t0, load_start=load0, load_end=os.getloadavg()[0])
    return result


def worker_main(spec_json: str, workers: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]], key: str) -> None:
    """The ``--worker`` side of :func:`run_worker`: run ``workers[spec[key]]`` and write
    its result where the parent reads it."""
    spec = json.loads(spec_json)
    result = workers[spec[key]](spec)
    Path(spec["result"]).write_text(json.dumps(result))


# --------------------------------------------------------------------------- Stable-Baselines3
def _sb3_shared_extractor() -> type:
    """An SB3 features extractor equal to our trunk (Linear-tanh-Linear-tanh, 64-64)."""
    import torch as th
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class SharedTrunk(BaseFeaturesExtractor):
        def __init__(self, observation_space, hidden=(64, 64)):
            super().__init__(observation_space, features_dim=hidden[-1])
            layers, n = [], int(observation_space.shape[0])
            for h in hidden:
                layers += [th.nn.Linear(n, h), th.nn.Tanh()]
                n = h
            self.net = th.nn.Sequential(*layers)

        def forward(self, obs):
            return self.net(obs)

    return SharedTrunk


def train_sb3(
    env_id: str,
    seed: int,
    total_steps: int,
    eval_every: int,
    eval_episodes: int,
    *,
    n_envs: int,
    threads: int = 1,
    shared_trunk: bool = False,
    always_final_eval: bool = False,
    normalize: bool = False,
    subprocess_envs: bool = False,
    **a2c_kwargs: Any,
) -> dict[str, Any]:
    """Train SB3's A2C (MlpPolicy, CPU) with greedy evaluations on our protocol.

    Evaluations (:func:`a2c.artifacts.evaluate.evaluate_policy`, seeds ``EVAL_SEED_BASE + k``,
    SB3's policy as ``model.predict(obs, deterministic=True)``) run at the start of a
    rollout once ``eval_every`` more steps are done (after the previous update, like
    ours after its update) and at the end of training: when an evaluation is due on
    that schedule, or with ``always_final_eval`` whenever the last evaluation was not at
    the final step. Their time is subtracted from the training clock, which runs from
    on_training_start to on_training_end.

    ``threads`` > 0 sets torch's thread count (0 keeps torch's default);
    ``shared_trunk`` gives pi and vf one 64-64 tanh trunk like ours; ``a2c_kwargs`` go to
    ``A2C``. ``normalize`` wraps the envs in ``VecNormalize`` (observations and rewards, as
    the zoo's ``normalize: true``); evaluations then feed the policy observations normalised
    with the frozen running statistics. ``subprocess_envs`` steps each env in its own
    process (SB3's ``SubprocVecEnv``) instead of in this one (``DummyVecEnv``). Returns
    ``total_steps`` (SB3's count), ``train_seconds``, ``evals`` (each with
    ``global_step``, ``train_seconds``, ``mean_return``, ``min_return``), ``threads``
    (torch's, as used) and ``wall_seconds`` (of ``learn``).
    """
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    from a2c.artifacts.evaluate import EVAL_SEED_BASE, evaluate_policy

    if threads > 0:
        torch.set_num_threads(threads)
    used_threads = torch.get_num_threads()

    class EvalClock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.evals: list[dict[str, Any]] = []
            self.next_eval = eval_every
            self.eval_seconds = 0.0
            self.t0 = self.train_seconds = 0.0

        def _evaluate(self) -> None:
            t = time.perf_counter()
            train_seconds = t - self.t0 - self.eval_seconds
            model = self.model
            norm = model.get_vec_normalize_env()
            scale = (lambda obs: norm.normalize_obs(obs)) if norm is not None else (lambda obs: obs)
            res = evaluate_policy(
                lambda obs: model.predict(scale(obs), deterministic=True)[0], env_id, eval_episodes, EVAL_SEED_BASE
            )
            self.evals.append(
                {
                    "global_step": int(self.num_timesteps),
                    "train_seconds": train_seconds,
                    "mean_return": res.mean,
                    "min_return": float(min(res.returns)),
                }
            )
            while self.next_eval <= self.num_timesteps:
                self.next_eval += eval_every
            self.eval_seconds += time.perf_counter() - t

        def _on_training_start(self) -> None:
            self.t0 = time.perf_counter()

        def _on_rollout_start(self) -> None:
            if self.num_timesteps >= self.next_eval:
                self._evaluate()

        def _on_step(self) -> bool:
            return True

        def _on_training_end(self) -> None:
            # The clock stops here; a final evaluation after it is not training time.
            self.train_seconds = time.perf_counter() - self.t0 - self.eval_seconds
            if always_final_eval:
                due = not self.evals or self.evals[-1]["global_step"] != self.num_timesteps
            else:
                due = self.num_timesteps >= self.next_eval
            if due:
                self._evaluate()

    policy_kwargs = a2c_kwargs.pop("policy_kwargs", None)
    if shared_trunk:
        policy_kwargs = dict(
            **(policy_kwargs or {}),
            features_extractor_class=_sb3_shared_extractor(),
            share_features_extractor=True,
            net_arch=dict(pi=[], vf=[]),
        )
    if subprocess_envs:
        from stable_baselines3.common.vec_env import SubprocVecEnv

        env = make_vec_env(env_id, n_envs=n_envs, seed=seed, vec_env_cls=SubprocVecEnv)
    else:
        env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    if normalize:
        from stable_baselines3.common.vec_env import VecNormalize

        env = VecNormalize(env, gamma=a2c_kwargs.get("gamma", 0.99))
    model = A2C("MlpPolicy", env, policy_kwargs=policy_kwargs, seed=seed, device="cpu", verbose=0, **a2c_kwargs)
    callback = EvalClock()
    t0 = time.perf_counter()
    model.learn(total_timesteps=total_steps, callback=callback)
    wall = time.perf_counter() - t0
    env.close()
    return {
        "total_steps": int(model.num_timesteps),
        "train_seconds": callback.train_seconds,
        "evals": callback.evals,
        "threads": used_threads,
        "wall_seconds": wall,
    }
