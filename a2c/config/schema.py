"""One dataclass holds every hyperparameter of a run.

The command line builds one flag per field from this class, a TOML file may set any
field, and per-environment presets fill in what neither says:
``defaults < preset(env_id) < TOML file < command-line flags``.
Validation happens once, here, so the rest of the package can trust a config.
Over 300 lines because each field's help text and the foreign-name aliases live beside
the fields they describe: splitting them out would scatter one table (the presets are in
[`a2c.config.presets`][a2c.config.presets]).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from a2c.common.errors import ConfigError

Activation = Literal["tanh", "relu", "elu", "gelu", "sigmoid", "linear"]
OptimizerName = Literal["rmsprop", "rmsprop_keras", "rmsprop_tf", "adam"]
Schedule = Literal["constant", "linear"]
ObsScaling = Literal["none", "bounds"]
Trunk = Literal["mlp", "nature_cnn"]
NetArch = Literal["shared", "separate"]
AtariVector = Literal["ale", "gymnasium"]
EvalPolicy = Literal["greedy", "sampled"]
Recurrent = Literal["none", "lstm", "gru"]
Precision = Literal["float32", "bfloat16"]


def _doc(text: str, **kwargs: Any) -> Any:
    """A dataclass field whose help text becomes the flag's help."""
    return field(metadata={"help": text}, **kwargs)


@dataclass
class Config:
    """Hyperparameters of one A2C run (defaults are the A2C paper's / SB3's)."""

    env_id: str = _doc(
        "gymnasium environment id, 'module:EnvId' (importing module registers it) or 'module:callable' "
        "(a class or function that returns the env)",
        default="CartPole-v1",
    )
    env_kwargs: dict[str, Any] = _doc(
        "keyword arguments for the environment's constructor: JSON on the command line "
        "(--env-kwargs '{\"size\": 8}'), an [env_kwargs] table in a config file",
        default_factory=dict,
    )
    seed: int = _doc("seed of the environments, the weights and the action sampling", default=0)
    total_steps: int = _doc("environment steps to train for (summed over the parallel envs)", default=200_000)
    n_envs: int = _doc("parallel environments", default=8)
    n_steps: int = _doc("steps per environment between updates (rollout length)", default=5)
    gamma: float = _doc("discount factor, in (0, 1]", default=0.99)
    gae_lambda: float = _doc("GAE lambda in [0, 1]; 1 gives plain n-step returns", default=1.0)
    lr: float = _doc("learning rate", default=7e-4)
    lr_schedule: Schedule = _doc("'constant', or 'linear' decay to 0 over total_steps", default="constant")
    optimizer: OptimizerName = _doc(
        "'rmsprop' (A2C's: eps outside the sqrt, as PyTorch), 'rmsprop_keras' (eps inside), 'rmsprop_tf' "
        "(eps inside, average started at ones: TensorFlow 1's, the zoo's RMSpropTFLike for Atari) or 'adam'",
        default="rmsprop",
    )
    rms_rho: float = _doc("RMSprop decay (A2C uses 0.99; Keras' default is 0.9)", default=0.99)
    optimizer_eps: float = _doc("optimizer epsilon (A2C uses 1e-5; Keras' default is 1e-7)", default=1e-5)
    max_grad_norm: float = _doc("clip the GLOBAL gradient norm to this; 0 disables", default=0.5)
    reward_scale: float = _doc(
        "multiply rewards by this before computing returns (e.g. 0.01 when returns reach "
        "hundreds, so the value loss does not swamp the shared trunk); episode returns are logged unscaled",
        default=1.0,
    )
    normalize_reward: bool = _doc(
        "divide rewards by a running std of the discounted return, clipped to +-10 (as the zoo's "
        "VecNormalize(norm_reward=True)); reward_scale still applies after it; standard trainer only",
        default=False,
    )
    vf_coef: float = _doc("weight of the value loss", default=0.5)
    ent_coef: float = _doc("weight of the entropy bonus", default=0.0)
    normalize_advantage: bool = _doc("standardise advantages within each batch", default=False)
    hidden_sizes: tuple[int, ...] = _doc(
        "sizes of the shared Dense trunk (after the convolutions for nature_cnn), e.g. 64,64", default=(64, 64)
    )
    trunk: Trunk = _doc(
        "the shared trunk: 'mlp' (Dense layers of hidden_sizes; observations of any "
        "shape are flattened first) or 'nature_cnn' (Conv 32x8x8/4, 64x4x4/2, 64x3x3/1, "
        "then Dense hidden_sizes; for (frames, height, width) stacks or (height, width, channels) "
        "images, uint8 ones scaled by 1/255 inside the model; frames smaller than 36x36 get one "
        "16x3x3 convolution instead, as MinAtar's network)",
        default="mlp",
    )
    net_arch: NetArch = _doc(
        "'shared': one Dense trunk of hidden_sizes feeds both the policy and the value head; 'separate': "
        "the policy and the value each get their own Dense layers of hidden_sizes (after the shared "
        "convolutions for nature_cnn)",
        default="shared",
    )
    activation: Activation = _doc("activation of the trunk", default="tanh")
    recurrent: Recurrent = _doc(
        "a recurrent cell between the trunk and the heads: 'lstm', 'gru' or 'none'; rollouts carry each env's "
        "cell state (reset at episode starts) and the update unrolls the cell over the rollout's n_steps "
        "(docs/recurrent.md); standard trainer (local envs, Ray workers or A3C), shared net_arch, Box/Discrete "
        "observations",
        default="none",
    )
    recurrent_size: int = _doc("units of the recurrent cell (with recurrent lstm or gru)", default=64)
    obs_scaling: ObsScaling = _doc(
        "'bounds' divides each observation feature by its finite bound (a Rescaling layer "
        "in the model, so exports take raw observations); 'none' feeds them as they are",
        default="none",
    )
    normalize_obs: bool = _doc(
        "standardise observations with running mean/std (clipped to +-10, as the zoo's VecNormalize): a "
        "layer in the model whose statistics the trainer updates from its rollouts, so saved and exported "
        "models take raw observations; the standard trainer and single fused runs (not populations)",
        default=False,
    )
    log_std_init: float = _doc(
        "Box action spaces: initial log standard deviation of the Gaussian policy "
        "(state-independent, one per action dimension)",
        default=0.0,
    )
    eval_every: int = _doc("evaluation every this many env steps; 0 disables", default=20_000)
    eval_episodes: int = _doc("episodes of each periodic evaluation", default=10)
    final_eval_episodes: int = _doc("episodes of the final evaluation written to summary.json", default=100)
    eval_policy: EvalPolicy = _doc(
        "how evaluations act: 'greedy' (the most likely action) or 'sampled' (actions drawn from the "
        "policy, episode k from its own generator seeded with its seed, the greedy score reported beside "
        "it); the Atari settings choose 'sampled', as rl-zoo3 and the published Atari scores do",
        default="greedy",
    )
    keep_best: bool = _doc(
        "make the run's model the weights of its best periodic evaluation (early stopping, as the zoo's "
        "best_model); those evaluations then play seeds of their own, and the last weights are saved "
        "(last_model.keras) and evaluated on the final episodes too (a2c/run/best.py)",
        default=False,
    )
    log_every: int = _doc("write metrics every this many updates", default=100)
    checkpoint_every: int = _doc(
        "save a checkpoint (RUN_DIR/checkpoints, for --resume) every this many updates; one is also "
        "saved at the end and on Ctrl-C/SIGTERM; 0 = only then",
        default=500,
    )
    keep_checkpoints: int = _doc("how many of the newest checkpoints to keep", default=3)
    run_dir: str = _doc("output directory; default runs/<env>__s<seed>__<time>", default="")
    progress: bool = _doc("show a progress bar (never shown when output is not a terminal)", default=True)
    precision: Precision = _doc(
        "'bfloat16' computes the convolutions and the Dense trunk in bfloat16 (mixed precision: the weights, "
        "the optimizer, the heads and the loss stay float32), ~1.5x faster on CPUs with AVX512_BF16 or AMX; "
        "convolutional models, standard trainer",
        default="float32",
    )
    num_threads: int = _doc("TensorFlow CPU threads; 1 is fastest for small models, 0 = TF's default", default=1)
    atari_vector: AtariVector = _doc(
        "Atari training envs: 'ale' (ale-py's C++ vector env, threaded) or "
        "'gymnasium' (gymnasium's wrappers in a SyncVectorEnv); same semantics, "
        "see a2c/envs/atari.py",
        default="ale",
    )
    # Fused mode (a2c.trainers.fused): the TensorFlow env ports, rollout, returns and update of
    # several updates in ONE compiled call (XLA, or TF's graph executor); it adds its own preset layer
    # (a2c.config.presets.FUSED_PRESETS) between the env preset and the TOML file.
    fused: bool = _doc(
        "train with the fused loop (a2c.trainers.fused): TensorFlow env ports, rollout and updates "
        "compiled into one call; adds the fused preset above the env preset; "
        "CartPole-v1, Acrobot-v1, MountainCar-v0, Pendulum-v1, MountainCarContinuous-v0 only",
        default=False,
    )
    fused_xla: bool = _doc(
        "fused mode: XLA-compile the loop (jit_compile): more steps/s than TensorFlow's graph executor "
        "but a longer compilation, which pays off only on long runs (results/fused_benchmark.md); "
        "--no-fused-xla runs the same loop in the graph executor (the CartPole and Acrobot fused "
        "presets do)",
        default=True,
    )
    fused_updates_per_call: int = _doc(
        "fused mode: updates per compiled call; logging, evaluation, checkpoints and Ctrl-C happen between calls",
        default=10,
    )
    # Ray workers (a2c.trainers.ray_workers, a2c.trainers.a3c): rollouts from remote actors.
    workers: int = _doc(
        "collect rollouts on this many Ray actors (pip install 'a2c[ray]'), each stepping envs_per_worker envs "
        "with its own copy of the model; the learner updates once per round and broadcasts the weights; "
        "0 = collect in this process",
        default=0,
    )
    envs_per_worker: int = _doc(
        "with workers: envs each worker steps; n_envs becomes workers x envs_per_worker; 0 = n_envs / workers",
        default=0,
    )
    ray_address: str = _doc(
        "with workers: join the Ray cluster at this address (host:port, or 'auto'); empty = start a local Ray",
        default="",
    )
    async_updates: bool = _doc(
        "with workers: A3C (a2c.trainers.a3c): each worker computes gradients on its own rollouts and the learner "
        "applies them as they arrive, sending fresh weights back to that worker only",
        default=False,
    )

    def __post_init__(self) -> None:
        if isinstance(self.hidden_sizes, list):
            self.hidden_sizes = tuple(self.hidden_sizes)
        self.env_kwargs = dict(self.env_kwargs)

    # Derived values, computed once so that every module agrees on them.
    @property
    def batch_size(self) -> int:
        return self.n_envs * self.n_steps

    @property
    def n_updates(self) -> int:
        """Updates needed to cover total_steps (the last one may overshoot by < batch_size)."""
        return math.ceil(self.total_steps / self.batch_size)

    def validate(self) -> Config:
        """Raise ConfigError naming the first field that is out of range."""
        hints = get_type_hints(Config)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            choices = get_args(hints[f.name])
            if choices and isinstance(choices[0], str) and value not in choices:
                raise ConfigError(f"{f.name} must be one of {', '.join(choices)}; got {value!r}")
        checks: list[tuple[bool, str]] = [
            (0.0 < self.gamma <= 1.0, f"gamma must be in (0, 1]; got {self.gamma}"),
            (0.0 <= self.gae_lambda <= 1.0, f"gae_lambda must be in [0, 1]; got {self.gae_lambda}"),
            (self.total_steps > 0, f"total_steps must be positive; got {self.total_steps}"),
            (self.n_envs > 0, f"n_envs must be positive; got {self.n_envs}"),
            (self.n_steps > 0, f"n_steps must be positive; got {self.n_steps}"),
            (math.isfinite(self.lr) and self.lr > 0, f"lr must be positive; got {self.lr}"),
            (0.0 <= self.rms_rho < 1.0, f"rms_rho must be in [0, 1); got {self.rms_rho}"),
            (self.optimizer_eps > 0, f"optimizer_eps must be positive; got {self.optimizer_eps}"),
            (self.max_grad_norm >= 0, f"max_grad_norm must be >= 0; got {self.max_grad_norm}"),
            (self.vf_coef >= 0, f"vf_coef must be >= 0; got {self.vf_coef}"),
            (
                math.isfinite(self.reward_scale) and self.reward_scale > 0,
                f"reward_scale must be positive; got {self.reward_scale}",
            ),
            (self.ent_coef >= 0, f"ent_coef must be >= 0; got {self.ent_coef}"),
            (
                len(self.hidden_sizes) > 0 and all(h > 0 for h in self.hidden_sizes),
                f"hidden_sizes must be one or more positive sizes; got {self.hidden_sizes}",
            ),
            (self.eval_every >= 0, f"eval_every must be >= 0; got {self.eval_every}"),
            (self.eval_episodes > 0, f"eval_episodes must be positive; got {self.eval_episodes}"),
            (self.final_eval_episodes >= 0, f"final_eval_episodes must be >= 0; got {self.final_eval_episodes}"),
            (self.log_every > 0, f"log_every must be positive; got {self.log_every}"),
            (self.checkpoint_every >= 0, f"checkpoint_every must be >= 0; got {self.checkpoint_every}"),
            (self.keep_checkpoints > 0, f"keep_checkpoints must be positive; got {self.keep_checkpoints}"),
            (self.num_threads >= 0, f"num_threads must be >= 0; got {self.num_threads}"),
            (
                self.fused_updates_per_call > 0,
                f"fused_updates_per_call must be positive; got {self.fused_updates_per_call}",
            ),
            (self.seed >= 0, f"seed must be >= 0; got {self.seed}"),
            (
                not (self.fused and self.env_kwargs),
                "env_kwargs are for gymnasium environments; fused mode runs TensorFlow ports with fixed settings",
            ),
            (
                not self.keep_best or self.eval_every > 0,
                "keep_best picks among periodic evaluations; it needs eval_every > 0",
            ),
            (
                not (self.fused and self.normalize_reward),
                "normalize_reward is for the standard trainer; fused mode scales rewards by reward_scale only",
            ),
            (math.isfinite(self.log_std_init), f"log_std_init must be finite; got {self.log_std_init}"),
            (self.workers >= 0, f"workers must be >= 0; got {self.workers}"),
            (self.recurrent_size > 0, f"recurrent_size must be positive; got {self.recurrent_size}"),
            (
                self.recurrent == "none" or not self.fused,
                f"recurrent={self.recurrent} needs the standard trainer: fused mode's compiled loop does not carry "
                "cell states (drop --fused)",
            ),
            (
                self.recurrent == "none" or self.net_arch == "shared",
                f"recurrent={self.recurrent} puts one cell between the shared trunk and the heads; use net_arch shared",
            ),
            (
                self.recurrent == "none" or self.eval_policy == "greedy",
                f"recurrent={self.recurrent} evaluates greedily only (its sampled play is not implemented); "
                "use eval_policy greedy",
            ),
            (
                self.precision == "float32" or not self.fused,
                "precision bfloat16 is for convolutional models in the standard trainer; fused mode computes in "
                "float32",
            ),
            (
                self.precision == "float32" or self.recurrent == "none",
                f"precision bfloat16 is not supported with a recurrent cell (recurrent={self.recurrent})",
            ),
            (self.envs_per_worker >= 0, f"envs_per_worker must be >= 0; got {self.envs_per_worker}"),
            (
                self.workers == 0 or self.workers * self.envs_per_worker == self.n_envs,
                f"n_envs ({self.n_envs}) must be workers ({self.workers}) x envs_per_worker ({self.envs_per_worker})",
            ),
            (
                self.workers > 0 or not (self.async_updates or self.ray_address or self.envs_per_worker),
                "async_updates, ray_address and envs_per_worker need workers > 0 (--workers N)",
            ),
            (
                not (self.fused and self.workers),
                "workers feed the standard trainer; fused mode collects its own rollouts (drop --fused or --workers)",
            ),
            (
                not (self.async_updates and (self.normalize_reward or self.normalize_obs)),
                "async updates (A3C) cannot normalise rewards or observations: each worker computes its own "
                "gradients; use --no-normalize-reward --no-normalize-obs or synchronous workers",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        d["env_kwargs"] = dict(self.env_kwargs)
        return d


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Config))


def coerce(name: str, value: Any) -> Any:
    """Convert a raw value (a flag's string or a TOML value) to the field's type."""
    hint = get_type_hints(Config)[name]
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if hint is int:
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                f = float(value.replace("_", ""))
                if not f.is_integer():
                    raise ValueError(value)
                return int(f)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(value)
            return value
        if hint is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if hint == tuple[int, ...]:
            if isinstance(value, str):
                value = [v for v in value.replace(" ", "").split(",") if v]
            return tuple(coerce("seed", v) for v in value)
        if hint == dict[str, Any]:
            return _keyword_arguments(name, value)
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    except ConfigError:
        raise
    except (TypeError, ValueError):
        hint_text = getattr(hint, "__name__", hint)
        if name == "env_id" and not isinstance(value, (str, int, float)):
            raise ConfigError(
                f"env_id expects an environment id (str); got a {type(value).__name__} object: to train on an "
                "environment object, class or factory, pass it to A2C(env) (from a2c import A2C)"
            ) from None
        raise ConfigError(f"{name} expects {hint_text}; got {value!r}") from None


def _keyword_arguments(name: str, value: Any) -> dict[str, Any]:
    """A JSON object (a flag's string) or a mapping (TOML table, Python dict) with string keys."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as e:
            raise ConfigError(f"{name} expects a JSON object such as '{{\"size\": 8}}'; got {value!r} ({e})") from None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{name} expects a table of keyword arguments (string keys); got {value!r}")
    return dict(value)


# Names other libraries (SB3, CleanRL, PyTorch, Keras) use for our fields, so that a config
# written for them gets pointed at the right key instead of a bare "unknown key".
ALIASES: dict[str, str] = {
    "learning_rate": "lr",
    "lr_rate": "lr",
    "step_size": "lr",
    "num_envs": "n_envs",
    "n_env": "n_envs",
    "nenvs": "n_envs",
    "num_workers": "n_envs",
    "num_steps": "n_steps",
    "n_step": "n_steps",
    "nsteps": "n_steps",
    "rollout_length": "n_steps",
    "total_timesteps": "total_steps",
    "timesteps": "total_steps",
    "num_timesteps": "total_steps",
    "max_norm": "max_grad_norm",
    "clip_grad_norm": "max_grad_norm",
    "grad_clip": "max_grad_norm",
    "clip": "max_grad_norm",
    "clipnorm": "max_grad_norm",
    "global_clipnorm": "max_grad_norm",
    "gradient_clip": "max_grad_norm",
    "entropy_coef": "ent_coef",
    "entropy_coeff": "ent_coef",
    "ent_coeff": "ent_coef",
    "beta": "ent_coef",
    "value_coef": "vf_coef",
    "vf_coeff": "vf_coef",
    "value_loss_coef": "vf_coef",
    "value_coeff": "vf_coef",
    "discount": "gamma",
    "discount_factor": "gamma",
    "lam": "gae_lambda",
    "lambda": "gae_lambda",
    "gae": "gae_lambda",
    "env": "env_id",
    "env_name": "env_id",
    "environment": "env_id",
    "eps": "optimizer_eps",
    "epsilon": "optimizer_eps",
    "rms_prop_eps": "optimizer_eps",
    "rho": "rms_rho",
    "rms_alpha": "rms_rho",
    "normalize_advantages": "normalize_advantage",
    "norm_adv": "normalize_advantage",
    "net_arch": "hidden_sizes",
    "hidden_size": "hidden_sizes",
    "hidden": "hidden_sizes",
    "activation_fn": "activation",
    "seeds": "seed",
}


def suggest(key: str) -> str | None:
    """The field a mistyped or foreign key most likely means (typos of aliases included)."""
    norm = key.strip().lower().replace("-", "_")
    if norm in FIELD_NAMES and norm != key:
        return norm
    if norm in ALIASES:
        return ALIASES[norm]
    match = difflib.get_close_matches(norm, [*FIELD_NAMES, *ALIASES], n=1, cutoff=0.75)
    return ALIASES.get(match[0], match[0]) if match else None


def describe_unknown(keys: list[str]) -> str:
    """``a (did you mean b?), c``: each unknown key with its hint, if any."""
    out = []
    for key in keys:
        hint = suggest(key)
        out.append(f"{key} (did you mean {hint}?)" if hint else key)
    return ", ".join(out)


# Fields whose value is itself a table: the one kind of TOML section a config file may hold.
TABLE_FIELDS = ("env_kwargs",)


def _sections(table: dict[str, Any], prefix: str = "") -> list[tuple[str, list[str]]]:
    """The TOML tables (and arrays of tables) in ``table``, with the keys each holds."""
    found = []
    for name, value in table.items():
        if name in TABLE_FIELDS:
            continue
        if isinstance(value, dict):
            found.append((prefix + name, list(value)))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            found.append((prefix + name, list(dict.fromkeys(k for v in value for k in v))))
    return found


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config; keys may sit at the top level or under [a2c], nowhere else."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    flat_rule = (
        "the file is flat: write every key at the top level (or every key under [a2c]); only [env_kwargs] is a table"
    )
    if isinstance(data.get("a2c"), dict):
        outside = [k for k in data if k != "a2c"]
        if outside:
            # tomllib keeps top-level keys beside [a2c]; reading only one of the two would drop settings.
            raise ConfigError(
                f"config file {path} has keys both under [a2c] and outside it ({', '.join(outside)}); {flat_rule}"
            )
        data, prefix = data["a2c"], "a2c."
    else:
        prefix = ""
    sections = _sections(data, prefix)
    if sections:
        name, keys = sections[0]
        held = f" (holding {', '.join(keys)})" if keys else ""
        raise ConfigError(f"config file {path} has a section [{name}]{held}; {flat_rule}")
    unknown = sorted(set(data) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(f"config file {path} has unknown keys: {describe_unknown(unknown)}")
    return data
