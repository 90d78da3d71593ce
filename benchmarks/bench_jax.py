"""Fused mode against a PureJaxRL-style A2C in JAX, side by side on the same CPU.

The peer of our fused mode is not Stable-Baselines3 but JAX, where "the whole training
loop in one jitted program" is the norm. This script holds its own A2C in JAX, written
for this comparison (not copied), with exactly the fused CartPole-v1 preset's algorithm
and hyperparameters, read from ``a2c.config.resolve.make_fused_config`` so that the two
cannot drift apart:

* CartPole-v1 in ``jax.numpy`` (gymnasium's dynamics: explicit Euler, 12 degrees / 2.4
  thresholds, 500-step truncation; same-step autoreset as our ports), vmapped over envs;
* a tanh 64-64 trunk shared by a softmax policy head and a linear value head,
  orthogonal initialisation with gains sqrt(2) / 0.01 / 1 and zero biases (a2c.agent.model);
* n_steps-step rollouts, GAE (lambda from the preset) with rewards scaled by
  ``reward_scale``, bootstrapping a truncation from V(final observation), no bootstrap
  after termination; loss ``policy + vf_coef * value - ent_coef * entropy``
  (a2c.agent.losses), the gradient clipped to a global norm, RMSprop with epsilon
  outside the square root (a2c.agent.optim) under a linear learning-rate decay to 0;
* ``jax.lax.scan`` over all updates in one ``jax.jit``; a population is the same
  function ``jax.vmap``-ed over seeds.

Each configuration runs our side through the library (``a2c.run.train.train_fused``,
XLA and graph executor; ``a2c.population.driver.train_population``) and the JAX side,
each in a fresh subprocess, the order rotated every round. Reported per run: env
steps/s with compilation excluded and included, compile seconds, and the final greedy
returns (our side on gymnasium's CartPole / the population's port, the JAX side on its
own CartPole; 20 episodes per agent by default) so that neither side wins by not
learning.

    python benchmarks/bench_jax.py --out results/jax_benchmark.json          # make bench-jax
    python benchmarks/bench_jax.py --steps 200000 --envs 64 --populations 8 \\
        --population-steps 200000 --out /tmp/jax_smoke.json                   # a smoke run

The JAX side needs the ``jax`` extra (``pip install -e '.[jax]'``); our side needs no JAX.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from common import REPO_ROOT, cpu_model, fmt, git, package_versions, run_worker, worker_main

THRESHOLD = 475.0
ENV_ID = "CartPole-v1"
#: Our side's implementations and the JAX one, per kind of configuration.
SINGLE_IMPLS = ("jax", "fused_xla", "fused_graph")
POPULATION_IMPLS = ("jax_population", "population_xla", "population_graph")

# gymnasium's CartPole-v1 constants (as a2c.envs.tf_envs.cartpole, which checks them against gymnasium).
GRAVITY = 9.8
MASS_CART = 1.0
MASS_POLE = 0.1
TOTAL_MASS = MASS_POLE + MASS_CART
HALF_LENGTH = 0.5
POLEMASS_LENGTH = MASS_POLE * HALF_LENGTH
FORCE_MAG = 10.0
TAU = 0.02
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4
RESET_BOUND = 0.05
MAX_EPISODE_STEPS = 500


# ============================================================================ the JAX A2C
def preset_hparams(n_envs: int, total_steps: int) -> dict[str, Any]:
    """The fused CartPole preset's hyperparameters at ``n_envs`` and ``total_steps``, as our
    side resolves them; SystemExit where the preset asks for something the JAX A2C lacks."""
    from a2c.config.resolve import make_fused_config

    cfg = make_fused_config({"env_id": ENV_ID, "n_envs": n_envs, "total_steps": total_steps})
    unsupported = {
        "optimizer": (cfg.optimizer, "rmsprop"),
        "activation": (cfg.activation, "tanh"),
        "net_arch": (cfg.net_arch, "shared"),
        "trunk": (cfg.trunk, "mlp"),
        "obs_scaling": (cfg.obs_scaling, "none"),
        "normalize_advantage": (cfg.normalize_advantage, False),
        "recurrent": (cfg.recurrent, "none"),
        "lr_schedule": (cfg.lr_schedule in ("linear", "constant"), True),
    }
    wrong = {k: v for k, (v, want) in unsupported.items() if v != want}
    if wrong:
        raise SystemExit(f"the JAX A2C implements the preset as it was; it now has {wrong}: update bench_jax.py")
    return {
        "n_envs": cfg.n_envs,
        "n_steps": cfg.n_steps,
        "n_updates": cfg.n_updates,
        "gamma": cfg.gamma,
        "gae_lambda": cfg.gae_lambda,
        "lr": cfg.lr,
        "lr_schedule": cfg.lr_schedule,
        "rms_rho": cfg.rms_rho,
        "optimizer_eps": cfg.optimizer_eps,
        "max_grad_norm": cfg.max_grad_norm,
        "vf_coef": cfg.vf_coef,
        "ent_coef": cfg.ent_coef,
        "reward_scale": cfg.reward_scale,
        "hidden_sizes": list(cfg.hidden_sizes),
    }


class CartPoleState(NamedTuple):
    """One CartPole (or a batch, every field alike); ``steps`` counts the episode's steps."""

    x: Any
    x_dot: Any
    theta: Any
    theta_dot: Any
    steps: Any


class Step(NamedTuple):
    """What :func:`cartpole_step` returns (same-step autoreset, as a2c.envs.tf_envs)."""

    state: CartPoleState
    obs: Any  # the next episode's first observation where this one ended
    reward: Any
    terminated: Any
    truncated: Any
    final_obs: Any  # the observation the step produced, before any reset


def cartpole_reset(key: Any) -> CartPoleState:
    """A fresh episode: every state variable uniform in [-0.05, 0.05), as gymnasium's reset."""
    import jax
    import jax.numpy as jnp

    u = jax.random.uniform(key, (4,), minval=-RESET_BOUND, maxval=RESET_BOUND)
    return CartPoleState(u[0], u[1], u[2], u[3], jnp.int32(0))


def cartpole_observe(s: CartPoleState) -> Any:
    import jax.numpy as jnp

    return jnp.stack([s.x, s.x_dot, s.theta, s.theta_dot], axis=-1)


def cartpole_dynamics(s: CartPoleState, action: Any) -> tuple[CartPoleState, Any]:
    """gymnasium's CartPole step (explicit Euler, its operation order); ``(next, terminated)``."""
    import jax.numpy as jnp

    force = jnp.where(action == 1, FORCE_MAG, -FORCE_MAG)
    cos, sin = jnp.cos(s.theta), jnp.sin(s.theta)
    temp = (force + POLEMASS_LENGTH * s.theta_dot**2 * sin) / TOTAL_MASS
    theta_acc = (GRAVITY * sin - cos * temp) / (HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * cos**2 / TOTAL_MASS))
    x_acc = temp - POLEMASS_LENGTH * theta_acc * cos / TOTAL_MASS
    x = s.x + TAU * s.x_dot
    x_dot = s.x_dot + TAU * x_acc
    theta = s.theta + TAU * s.theta_dot
    theta_dot = s.theta_dot + TAU * theta_acc
    terminated = (x < -X_THRESHOLD) | (x > X_THRESHOLD) | (theta < -THETA_THRESHOLD) | (theta > THETA_THRESHOLD)
    return CartPoleState(x, x_dot, theta, theta_dot, s.steps + 1), terminated


def cartpole_step(s: CartPoleState, action: Any, key: Any) -> Step:
    """One step of one env, reset in the same step when it ends (``key`` draws the new episode)."""
    import jax
    import jax.numpy as jnp

    stepped, terminated = cartpole_dynamics(s, action)
    truncated = stepped.steps >= MAX_EPISODE_STEPS
    done = terminated | truncated
    new = jax.tree_util.tree_map(lambda f, x: jnp.where(done, f, x), cartpole_reset(key), stepped)
    return Step(new, cartpole_observe(new), jnp.float32(1.0), terminated, truncated, cartpole_observe(stepped))


def init_params(key: Any, hidden_sizes: list[int], obs_dim: int = 4, n_actions: int = 2) -> dict[str, Any]:
    """Our model's initialisation scheme: orthogonal kernels, gains sqrt(2) (trunk), 0.01
    (policy), 1 (value), zero biases."""
    import jax
    import jax.numpy as jnp

    ortho = jax.nn.initializers.orthogonal
    keys = jax.random.split(key, len(hidden_sizes) + 2)
    sizes = [obs_dim, *hidden_sizes]
    trunk = [
        {"w": ortho(math.sqrt(2.0))(k, (a, b), jnp.float32), "b": jnp.zeros(b)}
        for k, a, b in zip(keys[: len(hidden_sizes)], sizes[:-1], sizes[1:], strict=True)
    ]
    h = sizes[-1]
    return {
        "trunk": trunk,
        "pi": {"w": ortho(0.01)(keys[-2], (h, n_actions), jnp.float32), "b": jnp.zeros(n_actions)},
        "v": {"w": ortho(1.0)(keys[-1], (h, 1), jnp.float32), "b": jnp.zeros(1)},
    }


def forward(params: dict[str, Any], obs: Any) -> tuple[Any, Any]:
    """``(logits, value)`` of a batch of observations."""
    import jax.numpy as jnp

    h = obs
    for layer in params["trunk"]:
        h = jnp.tanh(h @ layer["w"] + layer["b"])
    return h @ params["pi"]["w"] + params["pi"]["b"], (h @ params["v"]["w"] + params["v"]["b"])[..., 0]


def a2c_loss(params: dict[str, Any], batch: dict[str, Any], hp: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The A2C loss of one (T, N) rollout: GAE targets from this forward pass's values (no
    gradient), V(final obs) bootstraps truncations, termination stops the bootstrap.

    As a2c.agent.learner.batch_returns with ``truncation_obs``: step t bootstraps from V(obs[t + 1])
    (``last_obs`` is obs[T]) unless the env truncated there, then from V of the final observation the
    rollout kept for that env (``truncation_obs``, one per env: n_steps is below the time limit), so
    the bootstrap is one forward pass of 2N rows, not one over every step's final observation."""
    import jax
    import jax.numpy as jnp

    t, n = batch["rewards"].shape
    logits, values = forward(params, batch["obs"].reshape(t * n, -1))
    values_tn = jax.lax.stop_gradient(values.reshape(t, n))
    _, ends = forward(params, jnp.concatenate([batch["last_obs"], batch["truncation_obs"]]))
    ends = jax.lax.stop_gradient(ends)
    next_values = jnp.concatenate([values_tn[1:], ends[None, :n]])
    next_values = jnp.where(batch["truncated"] > 0, ends[None, n:], next_values)
    terminated, done = batch["terminated"], jnp.maximum(batch["terminated"], batch["truncated"])
    deltas = batch["rewards"] * hp["reward_scale"] + hp["gamma"] * (1.0 - terminated) * next_values - values_tn
    decay = hp["gamma"] * hp["gae_lambda"] * (1.0 - done)
    carry, backward = jnp.zeros(n), []
    for i in reversed(range(t)):  # n_steps is small: unrolled, as a2c.agent.returns does
        carry = deltas[i] + decay[i] * carry
        backward.append(carry)
    returns = (jnp.stack(backward[::-1]) + values_tn).reshape(-1)
    advantages = jax.lax.stop_gradient(returns - values)
    log_probs_all = jax.nn.log_softmax(logits)
    log_probs = jnp.take_along_axis(log_probs_all, batch["actions"].reshape(-1, 1), axis=1)[:, 0]
    policy_loss = -jnp.mean(advantages * log_probs)
    value_loss = jnp.mean((returns - values) ** 2)
    entropy = -jnp.mean(jnp.sum(jnp.exp(log_probs_all) * log_probs_all, axis=-1))
    total = policy_loss + hp["vf_coef"] * value_loss - hp["ent_coef"] * entropy
    return total, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}


def make_optimizer(hp: dict[str, Any]) -> Any:
    """Global-norm clip, then RMSprop ``w -= lr * g / (sqrt(v) + eps)`` (v from zeros) under the
    preset's schedule: a2c.agent.optim.RMSpropEpsOutside with Keras' PolynomialDecay to 0."""
    import optax

    lr = optax.linear_schedule(hp["lr"], 0.0, hp["n_updates"]) if hp["lr_schedule"] == "linear" else hp["lr"]
    clip = optax.clip_by_global_norm(hp["max_grad_norm"]) if hp["max_grad_norm"] > 0 else optax.identity()
    return optax.chain(clip, optax.rmsprop(lr, decay=hp["rms_rho"], eps=hp["optimizer_eps"], eps_in_sqrt=False))


def make_train(hp: dict[str, Any]) -> tuple[Any, Any]:
    """``(train, update)``: ``train(key) -> (params, per-update stats)`` runs the whole
    training (not jitted: jit it, or vmap it over keys first); ``update(carry) -> carry``
    is one update of the carry ``train`` scans, for tests."""
    import jax
    import jax.numpy as jnp

    n, t_max = hp["n_envs"], hp["n_steps"]
    tx = make_optimizer(hp)
    step_envs = jax.vmap(cartpole_step)

    def rollout(carry: tuple, _: Any) -> tuple[tuple, dict[str, Any]]:
        params, env_state, obs, ep_return, truncation_obs, key = carry
        key, k_act, k_reset = jax.random.split(key, 3)
        logits, _ = forward(params, obs)
        actions = jax.random.categorical(k_act, logits)
        out = step_envs(env_state, actions, jax.random.split(k_reset, n))
        done = out.terminated | out.truncated
        ep_return = ep_return + out.reward
        truncation_obs = jnp.where(out.truncated[:, None], out.final_obs, truncation_obs)
        record = {
            "obs": obs,
            "actions": actions,
            "rewards": out.reward,
            "terminated": out.terminated.astype(jnp.float32),
            "truncated": out.truncated.astype(jnp.float32),
            "episodes": done.sum(),
            "return_sum": jnp.where(done, ep_return, 0.0).sum(),
        }
        return (params, out.state, out.obs, jnp.where(done, 0.0, ep_return), truncation_obs, key), record

    def update(carry: tuple) -> tuple[tuple, dict[str, Any]]:
        params, opt_state, env_state, obs, ep_return, key = carry
        (params, env_state, obs, ep_return, truncation_obs, key), batch = jax.lax.scan(
            rollout, (params, env_state, obs, ep_return, jnp.zeros_like(obs), key), None, length=t_max
        )
        batch = {**batch, "last_obs": obs, "truncation_obs": truncation_obs}
        (loss, parts), grads = jax.value_and_grad(a2c_loss, has_aux=True)(params, batch, hp)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = jax.tree_util.tree_map(lambda p, u: p + u, params, updates)
        stats = {"loss": loss, **parts, "episodes": batch["episodes"].sum(), "return_sum": batch["return_sum"].sum()}
        return (params, opt_state, env_state, obs, ep_return, key), stats

    def init(key: Any) -> tuple:
        k_params, k_env, key = jax.random.split(key, 3)
        params = init_params(k_params, hp["hidden_sizes"])
        env_state = jax.vmap(cartpole_reset)(jax.random.split(k_env, n))
        obs = cartpole_observe(env_state)
        return params, tx.init(params), env_state, obs, jnp.zeros(n), key

    def train(key: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        carry, stats = jax.lax.scan(lambda c, _: update(c), init(key), None, length=hp["n_updates"])
        return carry[0], stats

    return train, (init, update)


def greedy_returns(params: dict[str, Any], key: Any, episodes: int) -> Any:
    """Undiscounted returns of ``episodes`` greedy (argmax) episodes on the JAX CartPole."""
    import jax
    import jax.numpy as jnp

    def step(carry: tuple, _: Any) -> tuple[tuple, None]:
        state, alive, ret = carry
        logits, _ = forward(params, cartpole_observe(state))
        state, terminated = jax.vmap(cartpole_dynamics)(state, jnp.argmax(logits, axis=-1))
        ret = ret + alive  # reward 1 on every step, the ending one included
        alive = alive & ~terminated & (state.steps < MAX_EPISODE_STEPS)
        return (state, alive, ret), None

    state = jax.vmap(cartpole_reset)(jax.random.split(key, episodes))
    (_, _, ret), _ = jax.lax.scan(step, (state, jnp.ones(episodes, bool), jnp.zeros(episodes)), None, MAX_EPISODE_STEPS)
    return ret


# ============================================================================ compiled programs
#: HLO instructions that launch no kernel: they name, slice or bundle buffers.
FREE_OPS = frozenset({"parameter", "constant", "get-tuple-element", "tuple", "bitcast"})


def hlo_computations(text: str) -> dict[str, list[str]]:
    """The instructions of every computation of an optimised HLO module (``*cpu_after_optimizations.txt``),
    by computation name; ``ENTRY`` for the entry computation."""
    comps: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith((" ", "}")) and line.rstrip().endswith("{"):
            name = "ENTRY" if line.startswith("ENTRY") else line.split()[0].lstrip("%")
            current = comps.setdefault(name, [])
        elif line.startswith("}"):
            current = None
        elif current is not None and " = " in line:
            current.append(line.strip())
    return comps


def hlo_opcode(instruction: str) -> str:
    """``fusion`` of ``%f = f32[64]{0} fusion(%a), kind=...``; tuple shapes hold parentheses of their own."""
    rest = instruction.split(" = ", 1)[1]
    if rest.startswith("("):
        depth = 0
        for i, ch in enumerate(rest):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0:
                rest = rest[i + 1 :].lstrip()
                break
    else:
        rest = rest.split(" ", 1)[1] if " " in rest else rest
    return rest.split("(", 1)[0]


def _attr(instruction: str, key: str) -> str | None:
    m = re.search(rf"\b{key}=%?([\w.\-]+)", instruction)
    return m.group(1) if m else None


def _trips(instruction: str, unknown: int) -> int:
    """A while loop's trip count: XLA's ``known_trip_count``, else ``unknown``."""
    m = re.search(r'known_trip_count":\{"n":"(\d+)"', instruction)
    return int(m.group(1)) if m else unknown


def hlo_kernels(comps: dict[str, list[str]], name: str, unknown_trips: int) -> int:
    """Kernels one run of computation ``name`` launches: every instruction but FREE_OPS, a fusion as one,
    a while loop's body and condition times its trip count (XLA's ``known_trip_count``, else
    ``unknown_trips``), a call as its callee, a conditional as its largest branch."""
    total = 0
    for ins in comps.get(name, []):
        op = hlo_opcode(ins)
        if op in FREE_OPS:
            continue
        if op == "while":
            body, cond = _attr(ins, "body"), _attr(ins, "condition")
            looped = hlo_kernels(comps, body or "", unknown_trips) + hlo_kernels(comps, cond or "", unknown_trips)
            total += _trips(ins, unknown_trips) * looped
        elif op == "call":
            total += hlo_kernels(comps, _attr(ins, "to_apply") or "", unknown_trips)
        elif op == "conditional":
            m = re.search(r"branch_computations=\{([^}]*)\}", ins)
            branches = [b.strip().lstrip("%") for b in m.group(1).split(",")] if m else []
            total += max((hlo_kernels(comps, b, unknown_trips) for b in branches), default=1)
        else:
            total += 1
    return total


def hlo_profile(text: str, n_steps: int) -> dict[str, int]:
    """Kernels per update of a training program: the body of the entry's costliest while loop (the
    update loop, run once per update); a nested loop of unknown trip count (our rollout's
    ``tf.while_loop``) counted ``n_steps`` times. Also the rollout step's own kernels (the update
    body's loop run ``n_steps`` times) and the instruction count of the whole module."""
    comps = hlo_computations(text)
    loops = [ins for ins in comps.get("ENTRY", []) if hlo_opcode(ins) == "while"]
    bodies = [_attr(ins, "body") or "" for ins in loops]
    per_update = {b: hlo_kernels(comps, b, n_steps) for b in bodies}
    update_body = max(per_update, key=lambda b: per_update[b]) if per_update else ""
    step = 0
    for ins in comps.get(update_body, []):
        if hlo_opcode(ins) == "while" and _trips(ins, n_steps) == n_steps:
            step = max(step, hlo_kernels(comps, _attr(ins, "body") or "", n_steps))
    return {
        "kernels_per_update": per_update.get(update_body, 0),
        "kernels_per_rollout_step": step,
        "module_instructions": sum(len(v) for v in comps.values()),
    }


def dump_env(env: dict[str, str], directory: Path, module_re: str) -> dict[str, str]:
    """``env`` with XLA flags added that dump the optimised HLO of the modules matching ``module_re``
    into ``directory`` (the flags ``env`` or the environment already has are kept)."""
    flags = f"--xla_dump_to={directory} --xla_dump_hlo_as_text --xla_dump_hlo_module_re={module_re}"
    base = env.get("XLA_FLAGS", os.environ.get("XLA_FLAGS"))
    # First: XLA's parser stops at a token that is not a flag (the JAX workers' "intra_op_parallelism_threads=1").
    return {**env, "XLA_FLAGS": " ".join(filter(None, [flags, base]))}


#: The training program's module name in each framework's dumps.
PROGRAM_MODULE = {"jax": "jit_train", "ours": ".*inference__run_.*"}
#: The implementation each side profiles: (single agent, population).
PROFILED_IMPLS = {"jax": ("jax", "jax_population"), "ours": ("fused_xla", "population_xla")}


def profile_programs(configs: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Compile each side's training program once more with XLA's HLO dumps on (short runs, not timed)
    and count the kernels each launches per update and per env step."""
    import tempfile

    rows = []
    for config in configs:
        for side in ("jax", "ours"):
            with tempfile.TemporaryDirectory(prefix="a2c-hlo-") as tmp:
                n_envs, members = config["n_envs"], config["members"]
                steps = n_envs * 5 * 4  # a few updates: the program does not depend on the budget
                spec_config = {**config, "total_steps": steps}
                impl = PROFILED_IMPLS[side][bool(members)]
                spec = job_spec(impl, spec_config, args)
                env = dump_env(jax_env(args.threads) if side == "jax" else {}, Path(tmp), PROGRAM_MODULE[side])
                run_worker(Path(__file__), spec, env, args.verbose)
                dumps = sorted(Path(tmp).glob("*cpu_after_optimizations.txt"))
                if not dumps:
                    raise SystemExit(f"no optimised HLO dump of {impl}'s training program in {tmp}")
                hp = preset_hparams(n_envs, steps)
                # The largest module is the training loop (a side may compile small helpers too).
                text = max((d.read_text() for d in dumps), key=len)
                prof = hlo_profile(text, hp["n_steps"])
                per_step = prof["kernels_per_update"] / (hp["n_steps"] * n_envs * max(members, 1))
                rows.append({"config": config_label(config), "impl": impl, **prof, "kernels_per_env_step": per_step})
                log(
                    f"profile {impl:<15} {config_label(config)}: {prof['kernels_per_update']} kernels per update, "
                    f"{prof['kernels_per_rollout_step']} per rollout step"
                )
    return rows


# ============================================================================ workers
def worker_jax(spec: dict[str, Any]) -> dict[str, Any]:
    """The JAX A2C: one agent (``members`` 0) or a population vmapped over seeds; AOT-compiled
    first so that compilation is timed apart from training."""
    import jax
    import jax.numpy as jnp

    hp = preset_hparams(spec["n_envs"], spec["total_steps"])
    train, _ = make_train(hp)
    members = spec["members"]
    t0 = time.perf_counter()
    if members:
        keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(spec["seed"], spec["seed"] + members))
        fn = jax.jit(jax.vmap(train))
        arg = keys
    else:
        fn = jax.jit(train)
        arg = jax.random.PRNGKey(spec["seed"])
    compiled = fn.lower(arg).compile()
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    params, stats = jax.block_until_ready(compiled(arg))
    train_seconds = time.perf_counter() - t0
    evaluate = jax.jit(lambda p, k: greedy_returns(p, k, spec["eval_episodes"]))
    eval_key = jax.random.PRNGKey(10_000)
    if members:
        returns = jax.vmap(evaluate, in_axes=(0, None))(params, eval_key)
        finals = [float(r.mean()) for r in returns]
    else:
        finals = [float(evaluate(params, eval_key).mean())]
    steps = hp["n_updates"] * hp["n_steps"] * hp["n_envs"] * max(members, 1)
    return {
        "impl": "jax_population" if members else "jax",
        "n_envs": hp["n_envs"],
        "members": members,
        "total_steps": steps,
        "compile_seconds": compile_seconds,
        "train_seconds": train_seconds,
        "steps_per_second": steps / train_seconds,
        "steps_per_second_incl_compile": steps / (train_seconds + compile_seconds),
        "final_returns": finals,
        "host_calls": 1,
        "hparams": hp,
        "devices": [str(d) for d in jax.devices()],
    }


def _our_overrides(spec: dict[str, Any], xla: bool) -> dict[str, Any]:
    return {
        "env_id": ENV_ID,
        "seed": spec["seed"],
        "n_envs": spec["n_envs"],
        "total_steps": spec["total_steps"],
        "fused_xla": xla,
        "eval_every": 0,
        "final_eval_episodes": spec["eval_episodes"],
        "checkpoint_every": 0,
        "run_dir": spec["run_dir"],
        "progress": False,
        "num_threads": spec["threads"],
    }


def worker_fused(spec: dict[str, Any]) -> dict[str, Any]:
    """One fused run through the library (``train_fused``), no periodic evaluation."""
    from a2c.config.resolve import make_fused_config
    from a2c.run.train import train_fused

    cfg = make_fused_config(_our_overrides(spec, spec["xla"]))
    s = train_fused(cfg, overwrite=True, quiet=True).summary
    return {
        "impl": "fused_xla" if cfg.fused_xla else "fused_graph",
        "n_envs": cfg.n_envs,
        "members": 0,
        "total_steps": s["total_steps"],
        "compile_seconds": s.get("compile_seconds", s.get("warmup_seconds")),
        "train_seconds": s["train_seconds"],
        "steps_per_second": s["steps_per_second"],
        "steps_per_second_incl_compile": s["total_steps"] / s["train_seconds"],
        "final_returns": [s["eval_mean_return"]],
        "host_calls": s["compiled_calls"],
    }


def worker_population(spec: dict[str, Any]) -> dict[str, Any]:
    """A population of seeds ``seed..seed+members-1`` through the library (``train_population``)."""
    from a2c.config.resolve import make_fused_config
    from a2c.population.driver import train_population

    base = make_fused_config(_our_overrides(spec, spec["xla"]))
    seeds = list(range(spec["seed"], spec["seed"] + spec["members"]))
    _, s = train_population(base, seeds, {}, overwrite=True, quiet=True)
    return {
        "impl": "population_xla" if base.fused_xla else "population_graph",
        "n_envs": base.n_envs,
        "members": spec["members"],
        "total_steps": s["total_steps"],
        "compile_seconds": s["compile_seconds"],
        "train_seconds": s["train_seconds"],
        "steps_per_second": s["steps_per_second"],
        "steps_per_second_incl_compile": s["total_steps"] / s["train_seconds"],
        "final_returns": [r["eval_mean_return"] for r in s["member_results"]],
        "host_calls": math.ceil(base.n_updates / base.fused_updates_per_call),  # no evaluations in between
    }


WORKERS = {"jax": worker_jax, "fused": worker_fused, "population": worker_population}


# ============================================================================ driver
def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def jax_env(threads: int) -> dict[str, str]:
    """Environment of a JAX worker: CPU only, and with ``threads`` 1 XLA's CPU backend on one
    thread, as our side's ``num_threads`` 1."""
    # The concurrency-optimised thunk scheduler of jaxlib 0.10's XLA deadlocks the 256-seed population
    # (every thread waiting, no CPU used, for minutes); without it the 64-seed population and the single
    # agent run as fast (alternated here: 0.76/0.78M and 0.78/0.79-0.91M steps/s with and without it).
    env = {"JAX_PLATFORMS": "cpu"}
    flags = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
    if threads == 1:
        flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    # JAX runs its XLA at its own defaults: our side's flags (a2c.common.tf_setup) are not passed on.
    from a2c.common.tf_setup import XLA_CPU_FLAGS  # no TensorFlow import

    ours = {f.split("=", 1)[0] for f in XLA_CPU_FLAGS}
    inherited = [f for f in os.environ.get("XLA_FLAGS", "").split() if f.split("=", 1)[0] not in ours]
    env["XLA_FLAGS"] = " ".join([*inherited, flags])
    return env


def job_spec(impl: str, config: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    common = {"seed": args.seed, "eval_episodes": args.eval_episodes, "threads": args.threads, **config}
    if impl.startswith("jax"):
        return {"worker": "jax", **common}
    xla = impl.endswith("xla")
    return {"worker": "population" if impl.startswith("population") else "fused", "xla": xla, **common}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3_000_000, help="env steps of each single-agent run")
    p.add_argument("--envs", default="8,64,256", help="env counts of the single-agent runs ('' for none)")
    p.add_argument("--populations", default="64,256", help="population sizes ('' for none)")
    p.add_argument("--population-steps", type=int, default=200_000, help="env steps per population member")
    p.add_argument("--impls", default=",".join(SINGLE_IMPLS + POPULATION_IMPLS), help="implementations to run")
    p.add_argument("--rounds", type=int, default=1, help="repetitions, the order rotated each round")
    p.add_argument("--seed", type=int, default=0, help="seed (first seed of a population)")
    p.add_argument("--eval-episodes", type=int, default=20, help="final greedy episodes per agent")
    p.add_argument("--threads", type=int, default=1, help="CPU threads of each side (1, or 0 for the defaults)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "jax_benchmark.json")
    p.add_argument("--verbose", action="store_true", help="show the workers' output")
    p.add_argument(
        "--profile-only",
        action="store_true",
        help="only (re)do the profile of an existing report (--out), keeping its timed runs",
    )
    p.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also count the kernels each side's compiled training program launches (XLA HLO dumps)",
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker_main(args.worker, WORKERS, "worker")
        return

    if args.threads not in (0, 1):
        raise SystemExit("--threads must be 1 (one CPU thread per side) or 0 (each framework's default)")
    impls = [i for i in args.impls.split(",") if i]
    unknown = set(impls) - set(SINGLE_IMPLS + POPULATION_IMPLS)
    if unknown:
        raise SystemExit(f"unknown --impls {sorted(unknown)}; known: {', '.join(SINGLE_IMPLS + POPULATION_IMPLS)}")
    configs: list[tuple[dict[str, Any], list[str]]] = []
    for n in [int(x) for x in args.envs.split(",") if x]:
        configs.append(
            ({"n_envs": n, "total_steps": args.steps, "members": 0}, [i for i in impls if i in SINGLE_IMPLS])
        )
    preset_envs = _preset_n_envs()
    for m in [int(x) for x in args.populations.split(",") if x]:
        configs.append(
            (
                {"n_envs": preset_envs, "total_steps": args.population_steps, "members": m},
                [i for i in impls if i in POPULATION_IMPLS],
            )
        )
    if args.profile_only:
        if not args.out.is_file():
            raise SystemExit(f"--profile-only profiles an existing report, and {args.out} does not exist")
        report = json.loads(args.out.read_text())
        report["programs"] = profile_programs([c for c, names in configs if names], args)
        write_report(report, args.out)
        return
    runs: list[dict[str, Any]] = []
    started = time.time()
    for r in range(args.rounds):
        for config, names in configs:
            if not names:
                continue
            shift = r % len(names)
            for impl in names[shift:] + names[:shift]:
                spec = job_spec(impl, config, args)
                env = jax_env(args.threads) if impl.startswith("jax") else None
                res = run_worker(Path(__file__), spec, env, args.verbose, timed=True)
                res.update(round=r, config=config)
                runs.append(res)
                log(describe(res))
    report = {
        "benchmark": "fused mode vs a PureJaxRL-style JAX A2C, CartPole-v1",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now().isoformat(timespec="seconds"),
        "wall_seconds": time.time() - started,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_at_end": os.getloadavg()[0]},
        "versions": package_versions(["tensorflow", "keras", "jax", "jaxlib", "optax", "gymnasium", "numpy"]),
        "git": git("rev-parse", "--short", "HEAD"),
        "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "out", "verbose")},
        "jax_worker_env": jax_env(args.threads),
        "our_xla_flags": our_xla_flags(),
        "threshold": THRESHOLD,
        "runs": runs,
    }
    report["summary"] = summarize(runs)
    write_report(report, args.out)  # the timed runs are kept whatever the profile does
    if args.profile:
        report["programs"] = profile_programs([c for c, names in configs if names], args)
        write_report(report, args.out)


def write_report(report: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    plot(report, out.with_suffix(".png"))
    log(f"wrote {out} (.md, .png)")


def our_xla_flags() -> str:
    """The XLA flags our side's workers run with (a2c.common.tf_setup adds its own on import)."""
    from a2c.common.tf_setup import add_xla_flags

    add_xla_flags()
    return os.environ.get("XLA_FLAGS", "")


def _preset_n_envs() -> int:
    """The fused CartPole preset's env count (a population's members each step that many)."""
    from a2c.config.presets import FUSED_PRESETS

    return int(FUSED_PRESETS[ENV_ID]["n_envs"])


def describe(r: dict[str, Any]) -> str:
    finals = r["final_returns"]
    who = f"{r['members']} seeds" if r["members"] else f"{r['n_envs']} envs"
    return (
        f"{r['impl']:<17} {who:>9}: {r['steps_per_second']:>10,.0f} steps/s "
        f"({r['steps_per_second_incl_compile']:,.0f} with compile {r['compile_seconds']:.1f}s), final greedy "
        f"median {statistics.median(finals):.1f}, solved {solved(finals)}/{len(finals)} (wall {r['wall_seconds']:.0f}s)"
    )


def solved(finals: list[float | None]) -> int:
    return sum(f is not None and f >= THRESHOLD for f in finals)


def config_label(config: dict[str, Any]) -> str:
    if config["members"]:
        return f"population {config['members']} x {config['total_steps']:,}"
    return f"{config['n_envs']} envs x {config['total_steps']:,}"


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration and implementation: medians over rounds, and the ratio to the JAX side's."""
    rows: list[dict[str, Any]] = []
    labels = list(dict.fromkeys(config_label(r["config"]) for r in runs))
    for label in labels:
        group = [r for r in runs if config_label(r["config"]) == label]
        by_impl: dict[str, list[dict[str, Any]]] = {}
        for r in group:
            by_impl.setdefault(r["impl"], []).append(r)
        jax_impl = next((i for i in by_impl if i.startswith("jax")), None)
        jax_sps = statistics.median(r["steps_per_second"] for r in by_impl[jax_impl]) if jax_impl else None
        for impl, rs in by_impl.items():
            sps = statistics.median(r["steps_per_second"] for r in rs)
            finals = [f for r in rs for f in r["final_returns"]]
            rows.append(
                {
                    "config": label,
                    "impl": impl,
                    "rounds": len(rs),
                    "steps_per_second": sps,
                    "steps_per_second_incl_compile": statistics.median(r["steps_per_second_incl_compile"] for r in rs),
                    "compile_seconds": statistics.median(r["compile_seconds"] for r in rs),
                    "vs_jax": sps / jax_sps if jax_sps else None,
                    "final_median": statistics.median(f for f in finals if f is not None) if finals else None,
                    "solved": solved(finals),
                    "agents": len(finals),
                    "host_calls": statistics.median(r.get("host_calls", 0) for r in rs),
                }
            )
    return rows


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = [
        "# Fused mode vs a PureJaxRL-style JAX A2C (CartPole-v1)",
        "",
        f"Written by `{report['command']}` on {report['date']} ({report['machine']['cpu']}, "
        f"{report['machine']['cores']} cores, load {report['machine']['load_at_end']:.1f} at the end); "
        f"{s['rounds']} round(s), order rotated per round, {s['threads']} thread(s) per side, "
        f"final greedy returns over {s['eval_episodes']} episodes per agent (solved: mean >= {THRESHOLD:g}). "
        "Both sides train the fused CartPole preset's algorithm and hyperparameters "
        "(benchmarks/bench_jax.py); steps/s are medians over rounds.",
        "",
        "| configuration | implementation | env steps/s (compile excluded) | vs JAX | env steps/s (compile included) "
        "| compile s | host calls | final greedy (median) | solved |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["summary"]:
        lines.append(
            f"| {r['config']} | {r['impl']} | {r['steps_per_second']:,.0f} | {fmt(r['vs_jax'], '.2f')}x | "
            f"{r['steps_per_second_incl_compile']:,.0f} | {r['compile_seconds']:.1f} | {r.get('host_calls', 0):,.0f} | "
            f"{fmt(r['final_median'], '.1f')} | {r['solved']}/{r['agents']} |"
        )
    if report.get("programs"):
        lines += [
            "",
            "Compiled training programs (`--profile`: each side compiled once more with XLA's optimised-HLO dumps): "
            "kernels launched per update (every HLO instruction that computes, a fusion counted once, loops "
            "times their trip counts; JAX's threefry draws are loops of their own), of them per vector env "
            "step of the rollout, and per env step (per update / (n_steps x envs x members)).",
            "",
            "| configuration | implementation | kernels per update | per rollout step | per env step "
            "| HLO instructions |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in report["programs"]:
            lines.append(
                f"| {r['config']} | {r['impl']} | {r['kernels_per_update']:,} | {r['kernels_per_rollout_step']:,} | "
                f"{r['kernels_per_env_step']:.3f} | {r['module_instructions']:,} |"
            )
    v = report["versions"]
    if "our_xla_flags" in report:
        lines += [
            "",
            f"XLA flags: ours `{report['our_xla_flags']}`; JAX's `{report['jax_worker_env'].get('XLA_FLAGS', '')}`.",
        ]
    lines += ["", "Versions: " + ", ".join(f"{k} {v[k]}" for k in v if v[k]) + f"; git {report['git']}.", ""]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    """Grouped bars: env steps/s (compile excluded) per configuration and implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["summary"]
    labels = list(dict.fromkeys(r["config"] for r in rows))
    impls = list(dict.fromkeys(r["impl"].replace("population", "fused").replace("jax_fused", "jax") for r in rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.8 * len(labels)), 4.0))
    width = 0.8 / max(len(impls), 1)
    for j, impl in enumerate(impls):
        xs, ys = [], []
        for i, label in enumerate(labels):
            for r in rows:
                name = r["impl"].replace("population", "fused").replace("jax_fused", "jax")
                if r["config"] == label and name == impl:
                    xs.append(i + (j - (len(impls) - 1) / 2) * width)
                    ys.append(r["steps_per_second"])
        ax.bar(xs, ys, width, label=impl)
    ax.set_xticks(range(len(labels)), labels, rotation=15, fontsize=8)
    ax.set_ylabel("env steps/s (compilation excluded)")
    ax.set_title("CartPole-v1: fused mode vs a JAX A2C, same hyperparameters")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
