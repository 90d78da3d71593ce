"""Fused training: environments, rollout, returns and updates in ONE compiled program.

On a tiny MLP, every compiled TensorFlow call costs a fixed ~0.6-1 ms of dispatch,
far more than stepping even a thousand numpy CartPoles, so a trainer that returns to
Python every env step is bound by round trips, not arithmetic. This module does what
PureJaxRL does with JAX: the batched TensorFlow ports of :mod:`a2c.tf_envs` step
inside the same ``tf.function`` as the policy, and a ``tf.while_loop`` runs
``K = cfg.fused_updates_per_call`` whole updates

    rollout (n_steps x n_envs, sampled actions, same-step autoreset)
    -> GAE returns -> A2C loss -> GradientTape -> clip -> optimizer step

per call. Python only sees the loop state between calls, so metrics, logging and
evaluation happen every K updates.

Two ways to run that one program (``cfg.fused_xla``): XLA-compiled
(``jit_compile=True``, the default), or op by op in TensorFlow's graph executor. On the
reference machine (2 CPU cores, ``benchmarks/bench_fused.py``) XLA steps CartPole
faster (0.44 M vs 0.16 M steps/s with 64 envs, 0.79 M vs 0.36 M with 256; about even
with 8,192) but its compilation takes ~1.5 s more (~2.7 s vs ~1.1 s, tracing
included), so XLA wins only after roughly 0.4 M (64 envs) to 1 M (256 envs) steps. A
CartPole run, solved after ~40-100k steps, finishes sooner in the graph executor,
which its fused preset therefore uses (as does Acrobot's). The two give statistically
the same training, not the same bits: XLA fuses and reorders float operations and
draws its random numbers with its own kernels.

Nothing of the algorithm is written twice: the model comes from
:func:`a2c.model.build_actor_critic`, the optimizer from
:func:`a2c.learner.make_optimizer`, and each update is :func:`a2c.learner.update_step`
(the standard trainer's ``make_update`` body: :func:`~a2c.learner.compute_loss`,
:func:`~a2c.learner.batch_returns`, :func:`a2c.losses.a2c_loss`, :func:`a2c.returns.gae`).
The one difference is the autoreset: the ports reset in the SAME step, so
``obs[t + 1]`` is already the next episode's first observation and the bootstrap
target of step t is ``V(final_obs[t])``, passed as ``next_obs``; every transition is
real (``valid`` is all ones).

Randomness: one Philox ``tf.random.Generator`` seeded with ``cfg.seed`` draws, in
ONE call per env step, the action noise and the envs' replacement episodes
(:class:`~a2c.tf_envs.UniformNoise`), so a seed fixes the run (on a given machine and
TensorFlow build). One generator draw rather than stateless keys split at every step,
or a draw each for the actions and the envs, because every draw inside XLA is a
Philox computation compiled on its own (~0.1-0.15 s each, measured here), and
compilation is the largest fixed cost of a fused run.

The run directory is the standard trainer's (config.toml, metrics.csv with the same
columns, evaluations.csv, tb/, model.keras, saved_model/, summary.json); evaluation
uses gymnasium's own envs through :func:`a2c.evaluate.evaluate_policy`, exactly as
the standard trainer does, and the saved model is the same Keras model.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, NamedTuple

import keras
import tensorflow as tf
import tomli_w
from tqdm.auto import tqdm

from a2c.config import Config, load_toml, make_config
from a2c.errors import EnvError
from a2c.evaluate import EVAL_SEED_BASE, EvalResult, evaluate_policy, final_eval_fields
from a2c.export import export_saved_model
from a2c.files import atomic_write_json, atomic_write_text
from a2c.learner import UPDATE_METRICS, make_greedy, make_optimizer, update_step
from a2c.logger import RunLogger
from a2c.model import build_actor_critic
from a2c.rollout import Rollout
from a2c.tf_envs import PORTED_ENVS, TFEnv, UniformNoise
from a2c.tf_envs.base import RNG_ALG
from a2c.train import TrainResult, configure_tensorflow, prepare_run_dir, save_model

#: Hyperparameters applied in fused mode, above the env preset and below a TOML file and
#: flags (``defaults < PRESETS[env] < FUSED_PRESETS[env] < TOML < flags``). The fused
#: loop runs ~0.4-0.9 M steps/s on one CPU core XLA-compiled, ~0.13-0.6 M in the graph
#: executor from 32 envs on, so steps are cheap and what costs wall-clock time is
#: compilation plus the updates until the policy is solved for good. Common:
#: PyTorch-style RMSprop with a lr several times the 8-env presets', decayed linearly to
#: 0 (the decay is what makes the greedy policy STAY solved), 128 envs x 5 steps.
#: Acrobot reaches >= -100 within ~50-200k steps with it, and so runs in the graph
#: executor too (seeds 10-12: >= -100 from 50k, 50k, 200k steps and on to the end, final
#: -83 / -79 / -85; with XLA 100k, 50k, 50k, final -82 / -87 / -83). MountainCar's
#: 1M-step budget is where XLA pays off.
#:
#: CartPole: rewards scaled by 0.1 (as Acrobot's by 0.01: unscaled returns of ~100 make
#: the value loss swamp the trunk shared with the policy), 64 envs at lr 4e-3 over 200k
#: steps, in the graph executor (see the module docstring: it is solved before XLA's
#: extra compilation would pay off). Chosen with greedy 100-episode evaluations every
#: 20k steps, the benchmark's seeds 0-2 left out: in the graph executor tuned on seeds
#: 10-17 and checked on seeds 20-27, with XLA checked on seeds 1, 10-16 and 20-27;
#: stable from 40-100k steps on 16/16 seeds in each executor. Unscaled rewards needed
#: ~450-550k steps (128 envs, lr 4e-3 over 600k). Faster lrs with more envs were less
#: robust: 256 envs at 1e-2 over 300k was stable on 16/16 seeds in the graph executor
#: but 5/8 with XLA, at 6e-3 7/8 with XLA; 128 envs at 6e-3 over 200k 4/8 with XLA.
_FUSED_COMMON: dict[str, Any] = dict(n_envs=128, n_steps=5, optimizer="rmsprop", lr=4e-3,
                                     lr_schedule="linear", ent_coef=0.0, fused_updates_per_call=20)
FUSED_PRESETS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(_FUSED_COMMON, n_envs=64, lr=4e-3, reward_scale=0.1, total_steps=200_000,
                        eval_every=50_000, fused_xla=False),
    "Acrobot-v1": dict(_FUSED_COMMON, total_steps=500_000, eval_every=100_000, fused_xla=False),
    "MountainCar-v0": dict(_FUSED_COMMON, total_steps=1_000_000, eval_every=200_000),
}


def ported_env(env_id: str) -> TFEnv:
    """The TensorFlow port of ``env_id``, or EnvError listing the ported ids."""
    try:
        return PORTED_ENVS[env_id]
    except KeyError:
        ported = ", ".join(sorted(PORTED_ENVS))
        raise EnvError(f"fused mode needs a TensorFlow port of the environment and {env_id!r} has none; "
                       f"ported environments: {ported}") from None


def make_fused_config(overrides: dict[str, Any] | None = None, toml_path: str | Path | None = None) -> Config:
    """Resolve a fused-mode config: ``defaults < env preset < FUSED_PRESETS[env] < TOML < overrides``.

    ``fused`` is set to True. The env id is resolved first (overrides, else the TOML,
    else the default) to pick the fused preset.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    from_file = load_toml(toml_path) if toml_path else {}
    env_id = str(overrides.get("env_id", from_file.get("env_id", Config.env_id)))
    layered = {**FUSED_PRESETS.get(env_id, {}), **from_file, **overrides, "fused": True}
    return make_config(layered)


class LoopState(NamedTuple):
    """What one fused call carries from update to update (and between calls)."""

    env_state: Any  # the port's state NamedTuple, fields (n_envs,)
    obs: tf.Tensor  # (n_envs, obs_dim) observations the next step acts on
    ep_return: tf.Tensor  # (n_envs,) return of the running episodes so far
    ep_length: tf.Tensor  # (n_envs,) int32 length of the running episodes so far


#: Episode statistics summed in-graph over one call.
EPISODE_STATS = ("episodes", "return_sum", "length_sum")


class FusedLoop:
    """The compiled K-update loop and its state, held in ``tf.Variable``s.

    ``run(k)`` performs ``k`` updates (``k`` is a tensor argument, so every call with
    any ``k`` reuses one trace and one executable) and returns the mean of every
    update metric over the ``k`` updates plus the episode statistics of the episodes
    that finished during the call. ``run(0)`` compiles without changing anything.
    """

    def __init__(self, model: keras.Model, optimizer: keras.optimizers.Optimizer, cfg: Config,
                 env: TFEnv) -> None:
        self.model, self.optimizer, self.cfg, self.env = model, optimizer, cfg, env
        optimizer.build(model.trainable_variables)
        n = cfg.n_envs
        # One Philox generator for actions and env resets (see the module docstring).
        self.rng = tf.random.Generator.from_seed(cfg.seed, alg=RNG_ALG)
        env_state, obs = env.reset(self.rng, n)
        self.state = LoopState(
            env_state=tf.nest.map_structure(lambda x: tf.Variable(x, trainable=False), env_state),
            obs=tf.Variable(tf.cast(obs, tf.float32), trainable=False),
            ep_return=tf.Variable(tf.zeros([n], tf.float32), trainable=False),
            ep_length=tf.Variable(tf.zeros([n], tf.int32), trainable=False),
        )
        self.traces = 0
        # autograph=False: the loops are explicit tf.while_loops, and converting the
        # Keras and learner code would triple the tracing time for nothing.
        self.run = tf.function(self._run, input_signature=[tf.TensorSpec([], tf.int32)],
                               jit_compile=cfg.fused_xla, autograph=False)

    def compile(self) -> float:
        """Trace and compile ``run`` (via ``run(0)``, which changes nothing); seconds taken.

        Compiling is XLA's compilation, or in the graph executor Grappler's graph
        optimisation and the lowering of the while loops.

        Python's garbage collector is paused meanwhile: tracing allocates many small
        objects and collections would add ~10% to it.
        """
        enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter()
            self.run(tf.constant(0, tf.int32))
            return time.perf_counter() - start
        finally:
            if enabled:
                gc.enable()

    # ------------------------------------------------------------------ graph code
    def _rollout(self, state: LoopState) -> tuple[LoopState, Rollout, tf.Tensor, dict[str, tf.Tensor]]:
        """n_steps x n_envs transitions; returns the batch, the final obs and episode sums."""
        cfg, env, model = self.cfg, self.env, self.model
        t_max, n = cfg.n_steps, cfg.n_envs
        arrays = {name: tf.TensorArray(dtype, size=t_max, element_shape=shape)
                  for name, dtype, shape in (
                      ("obs", tf.float32, [n, env.obs_dim]), ("final_obs", tf.float32, [n, env.obs_dim]),
                      ("actions", tf.int32, [n]), ("rewards", tf.float32, [n]),
                      ("terminated", tf.float32, [n]), ("truncated", tf.float32, [n]))}
        zero = tf.constant(0.0)

        def body(t, s: LoopState, arrays, episodes, return_sum, length_sum):
            logits = model(s.obs)["logits"]
            # ONE draw per step for the action noise and the env's (see the module docstring).
            u = self.rng.uniform([n, env.n_actions + env.noise_dim], dtype=tf.float32)
            # Gumbel-max sampling, as a2c.learner.make_act.
            gumbel_u = tf.maximum(u[:, :env.n_actions], 1e-12)
            actions = tf.argmax(logits - tf.math.log(-tf.math.log(gumbel_u)), axis=-1, output_type=tf.int32)
            step = env.step(s.env_state, actions, UniformNoise(u[:, env.n_actions:]))
            reward = tf.cast(step.reward, tf.float32)
            done = tf.logical_or(step.terminated, step.truncated)
            ep_return = s.ep_return + reward
            ep_length = s.ep_length + 1
            done_f = tf.cast(done, tf.float32)
            episodes += tf.reduce_sum(done_f)
            return_sum += tf.reduce_sum(done_f * ep_return)
            length_sum += tf.reduce_sum(done_f * tf.cast(ep_length, tf.float32))
            arrays = {
                "obs": arrays["obs"].write(t, s.obs),
                "final_obs": arrays["final_obs"].write(t, tf.cast(step.final_obs, tf.float32)),
                "actions": arrays["actions"].write(t, actions),
                "rewards": arrays["rewards"].write(t, reward),
                "terminated": arrays["terminated"].write(t, tf.cast(step.terminated, tf.float32)),
                "truncated": arrays["truncated"].write(t, tf.cast(step.truncated, tf.float32)),
            }
            s = LoopState(step.state, tf.cast(step.obs, tf.float32),
                          tf.where(done, 0.0, ep_return), tf.where(done, 0, ep_length))
            return t + 1, s, arrays, episodes, return_sum, length_sum

        _, state, arrays, episodes, return_sum, length_sum = tf.while_loop(
            lambda t, *_: t < t_max, body, (tf.constant(0), state, arrays, zero, zero, zero),
            maximum_iterations=t_max)
        stacked = {name: ta.stack() for name, ta in arrays.items()}
        batch = Rollout(
            obs=tf.concat([stacked["obs"], state.obs[None]], axis=0),
            actions=stacked["actions"], rewards=stacked["rewards"],
            terminated=stacked["terminated"], truncated=stacked["truncated"],
            valid=tf.ones([t_max, n], tf.float32),  # same-step autoreset: every transition is real
        )
        stats = {"episodes": episodes, "return_sum": return_sum, "length_sum": length_sum}
        return state, batch, stacked["final_obs"], stats

    def _run(self, num_updates: tf.Tensor) -> dict[str, tf.Tensor]:
        self.traces += 1  # Python side effect: counts traces, not calls
        state0 = tf.nest.map_structure(lambda v: v.read_value(), self.state)
        metric_names = UPDATE_METRICS  # averaged in-graph over one call
        sums0 = {k: tf.constant(0.0) for k in metric_names + EPISODE_STATS}

        def body(i, s: LoopState, sums):
            s, batch, final_obs, ep_stats = self._rollout(s)
            metrics = update_step(self.model, self.optimizer, batch, self.cfg, next_obs=final_obs)
            sums = {k: sums[k] + tf.cast({**metrics, **ep_stats}[k], tf.float32) for k in sums}
            return i + 1, s, sums

        _, state, sums = tf.while_loop(lambda i, *_: i < num_updates, body, (tf.constant(0), state0, sums0))
        tf.nest.map_structure(lambda v, x: v.assign(x), self.state, state)
        count = tf.maximum(tf.cast(num_updates, tf.float32), 1.0)
        out = {k: sums[k] / count for k in metric_names}
        out.update({k: sums[k] for k in EPISODE_STATS})
        return out


# ------------------------------------------------------------------------------ trainer
class _Window:
    """Update metrics summed over the calls since the last metrics row, each call's
    means weighted by its number of updates."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.updates = 0
        self.sums = dict.fromkeys(UPDATE_METRICS, 0.0)

    def add(self, out: dict[str, float], k: int) -> None:
        self.updates += k
        for name in UPDATE_METRICS:
            self.sums[name] += out[name] * k

    def means(self) -> dict[str, float]:
        return {name: total / max(self.updates, 1) for name, total in self.sums.items()}


class RecentEpisodes:
    """Return and length means over the most recent finished episodes, at least ``size``.

    The compiled loop reports only per-call sums, so the window holds whole calls: the
    newest calls that together cover at least ``size`` episodes (all of them while
    fewer have finished). The standard trainer's windows hold exactly the last 100.
    """

    def __init__(self, size: int = 100) -> None:
        self.size = size
        self.calls: deque[tuple[float, float, float]] = deque()  # (episodes, return_sum, length_sum)
        self.episodes = 0.0

    def add(self, episodes: float, return_sum: float, length_sum: float) -> None:
        if episodes <= 0:
            return
        self.calls.append((episodes, return_sum, length_sum))
        self.episodes += episodes
        while self.episodes - self.calls[0][0] >= self.size:
            self.episodes -= self.calls.popleft()[0]

    def return_mean(self) -> float | None:
        return sum(c[1] for c in self.calls) / self.episodes if self.calls else None

    def length_mean(self) -> float | None:
        return sum(c[2] for c in self.calls) / self.episodes if self.calls else None


def _updates_this_call(cfg: Config, done_updates: int, next_eval: int | None) -> int:
    """K, or fewer so that a call ends at the last update or at the next evaluation step."""
    k = min(cfg.fused_updates_per_call, cfg.n_updates - done_updates)
    if next_eval is not None:
        to_eval = math.ceil((next_eval - done_updates * cfg.batch_size) / cfg.batch_size)
        k = min(k, max(to_eval, 1))
    return k


def train_fused(cfg: Config, *, overwrite: bool = False, quiet: bool = False) -> TrainResult:
    """Train as ``cfg`` says with the fused loop and write the standard run directory.

    Clock: ``time/elapsed_seconds`` and ``train_seconds`` include the compilation
    (``compile_seconds``, also reported as ``warmup_seconds`` as the standard trainer
    does for its first update) and exclude evaluations; ``steps_per_second`` excludes
    the compilation. Metrics leave the graph once per call (every
    ``fused_updates_per_call`` updates). A call also ends at every evaluation step,
    so evaluations happen every ``eval_every`` steps (rounded up to a whole update).
    A metrics.csv row is written at the first call end after each multiple of
    ``log_every`` updates, at the end, and at every evaluation step (that one, like
    the evaluation, off the clock); its train/ metrics are averaged over the updates
    since the previous row and its rollout/ episode statistics (and the summary's
    ``train_return_mean_last100``) cover the newest calls that together hold at least
    100 finished episodes (:class:`RecentEpisodes`). Not supported in fused mode:
    checkpoints and --resume. Non-finite losses or gradients stop training
    (``NonFiniteError``).
    """
    cfg.validate()
    env = ported_env(cfg.env_id)  # EnvError before anything is written
    configure_tensorflow(cfg)
    run_dir = prepare_run_dir(cfg, overwrite)
    cfg_dict = {**cfg.to_dict(), "fused": True, "run_dir": str(run_dir)}
    atomic_write_text(run_dir / "config.toml", tomli_w.dumps(cfg_dict))

    model = build_actor_critic(env.obs_dim, env.n_actions, cfg.hidden_sizes, cfg.activation, seed=cfg.seed)
    loop = FusedLoop(model, make_optimizer(cfg), cfg, env)
    greedy_periodic = make_greedy(model, cfg.eval_episodes, env.obs_dim)
    logger = RunLogger(run_dir, cfg_dict)

    updates = global_step = calls = 0
    episodes = 0
    window = _Window()  # the update metrics the next metrics row averages
    recent = RecentEpisodes(100)
    last_row_update = 0
    next_eval = cfg.eval_every if cfg.eval_every > 0 else None
    show = cfg.progress and not quiet and sys.stderr.isatty()
    bar = tqdm(total=cfg.n_updates * cfg.batch_size, unit="step", disable=not show, dynamic_ncols=True)

    def write_row() -> None:
        nonlocal last_row_update
        last_return = recent.return_mean()
        row = {
            "global_step": global_step, "update": updates,
            "rollout/ep_return_mean": "" if last_return is None else last_return,
            "rollout/ep_length_mean": "" if last_return is None else recent.length_mean(),
            "rollout/episodes": episodes,
            **{f"train/{name}": value for name, value in window.means().items()},
            "time/steps_per_second": global_step / max(train_seconds - compile_seconds, 1e-9),
            "time/elapsed_seconds": train_seconds,
        }
        logger.log_metrics(row)
        window.clear()
        last_row_update = updates
        if last_return is not None:
            bar.set_postfix(ret=f"{last_return:.1f}", sps=f"{row['time/steps_per_second']:.0f}", refresh=False)

    try:
        compile_seconds = loop.compile()
        train_seconds = compile_seconds
        tick = time.perf_counter()
        while updates < cfg.n_updates:
            k = _updates_this_call(cfg, updates, next_eval)
            out = {name: float(v) for name, v in loop.run(tf.constant(k, tf.int32)).items()}
            calls += 1
            now = time.perf_counter()
            train_seconds += now - tick
            tick = now
            if not (math.isfinite(out["total_loss"]) and math.isfinite(out["grad_norm"])):
                from a2c.checkpoint import NonFiniteError

                raise NonFiniteError(f"non-finite loss or gradient in updates {updates + 1}-{updates + k}; "
                                     "training stopped. Try a lower --lr")
            updates += k
            global_step += k * cfg.batch_size
            episodes += int(out["episodes"])
            window.add(out, k)
            recent.add(out["episodes"], out["return_sum"], out["length_sum"])
            bar.update(k * cfg.batch_size)
            eval_due = next_eval is not None and global_step >= next_eval
            # LOG: when a multiple of log_every updates was passed during this call, and
            # at the end: on the clock, as the standard trainer's rows.
            if not eval_due and (updates // cfg.log_every > last_row_update // cfg.log_every
                                 or updates == cfg.n_updates):
                write_row()
            # EVALUATE: with a metrics row at the same step (which gives the evaluation
            # its training clock), both off the clock.
            if eval_due:
                write_row()
                result = evaluate_policy(greedy_periodic, cfg.env_id, cfg.eval_episodes, EVAL_SEED_BASE)
                logger.log_eval({"global_step": global_step,
                                 **{f"eval/{name}": v for name, v in result.summary().items()}})
                while next_eval <= global_step:
                    next_eval += cfg.eval_every
                tick = time.perf_counter()
    except BaseException:
        logger.close()
        raise
    finally:
        bar.close()

    try:
        save_model(model, run_dir / "model.keras")
        export_saved_model(model, run_dir / "saved_model", env_id=cfg.env_id)
        final: EvalResult | None = None
        if cfg.final_eval_episodes > 0:
            greedy_final = make_greedy(model, cfg.final_eval_episodes, env.obs_dim)
            final = evaluate_policy(greedy_final, cfg.env_id, cfg.final_eval_episodes, EVAL_SEED_BASE)
            logger.log_eval({"global_step": global_step,
                             **{f"eval/{name}": v for name, v in final.summary().items()}})
    finally:
        logger.close()
    summary = {
        "env_id": cfg.env_id,
        "seed": cfg.seed,
        "total_steps": global_step,
        "updates": cfg.n_updates,
        "train_seconds": train_seconds,
        "steps_per_second": global_step / max(train_seconds - compile_seconds, 1e-9),
        "warmup_seconds": compile_seconds,
        "episodes": episodes,
        # Fused mode: over the newest calls that cover >= 100 episodes (RecentEpisodes).
        "train_return_mean_last100": recent.return_mean(),
        **final_eval_fields(final),
        "trainer": "fused",
        "executor": "xla" if cfg.fused_xla else "graph",
        "compile_seconds": compile_seconds,
        "compiled_calls": calls,
        "traces": loop.traces,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
    }
    atomic_write_json(run_dir / "summary.json", summary)
    return TrainResult(run_dir, model, summary)
