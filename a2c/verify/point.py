"""The point at which the three gradients are compared, and the loss being differentiated.

A check point is everything the loss depends on: the weights, a batch of
observations, and the actions and returns (A2C) or Q-values (soft loss). It is
drawn from a seeded generator so that a failing check can be reproduced, and it
is written out in full by ``--json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from a2c.common.errors import ConfigError
from a2c.verify.activations import NUMPY_ACTIVATIONS
from a2c.verify.network import KINKED_ACTIVATIONS, NetSpec

Case = Literal["a2c", "soft"]

A2C_TERMS = ("policy_loss", "value_loss", "entropy", "total_loss")
SOFT_TERMS = ("soft_policy_loss",)


@dataclass(frozen=True)
class LossSpec:
    """Which loss, with which coefficients (the trainer's ``a2c_loss`` arguments).

    ``ent_coef`` defaults to 0.01 rather than the CartPole preset's 0 so that the
    entropy term actually contributes to the total being checked.
    """

    case: Case = "a2c"
    vf_coef: float = 0.5
    ent_coef: float = 0.01
    normalize_advantage: bool = False
    alpha: float = 1.0

    def __post_init__(self) -> None:
        if self.case not in ("a2c", "soft"):
            raise ConfigError(f"case must be 'a2c' or 'soft'; got {self.case!r}")

    @property
    def terms(self) -> tuple[str, ...]:
        """The scalars whose gradients are compared (a2c_loss's dict keys, or the soft loss)."""
        return A2C_TERMS if self.case == "a2c" else SOFT_TERMS

    def to_dict(self) -> dict[str, Any]:
        if self.case == "soft":
            return {"case": self.case, "alpha": self.alpha}
        return {
            "case": self.case,
            "vf_coef": self.vf_coef,
            "ent_coef": self.ent_coef,
            "normalize_advantage": self.normalize_advantage,
        }


@dataclass
class Point:
    """Weights and a batch of transitions, all float64 (actions int64 (B,), float64
    (B, action_dim) for a Gaussian policy, int64 (B, sub-actions) for MultiDiscrete (``nvec``
    set) and MultiBinary policies)."""

    weights: dict[str, np.ndarray]
    obs: np.ndarray
    actions: np.ndarray
    returns: np.ndarray
    q_values: np.ndarray
    mask: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    nvec: tuple[int, ...] | None = None

    @property
    def batch(self) -> int:
        return int(self.obs.shape[0])

    def action_indicators(self, n: int) -> np.ndarray:
        """(B, n) float64 the per-sample losses take: the one-hot action (Discrete), the
        concatenated one-hots of the sub-actions (MultiDiscrete), the actions themselves
        (Gaussian, MultiBinary)."""
        if self.actions.ndim == 1:
            return np.eye(n)[self.actions]
        if self.nvec is not None:
            return np.concatenate([np.eye(k)[self.actions[:, j]] for j, k in enumerate(self.nvec)], axis=1)
        return np.asarray(self.actions, np.float64)

    def sample_weights(self) -> np.ndarray:
        """Per-sample weights of a2c_loss's ``masked_mean``: 1/B, or mask / max(sum(mask), 1)."""
        if self.mask is None:
            return np.full(self.batch, 1.0 / self.batch)
        mask = np.asarray(self.mask, dtype=np.float64)
        return mask / max(mask.sum(), 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "obs": self.obs.tolist(),
            "actions": self.actions.tolist(),
            "returns": self.returns.tolist(),
            "q_values": self.q_values.tolist(),
            "mask": None if self.mask is None else self.mask.tolist(),
            "weights": {k: v.tolist() for k, v in self.weights.items()},
        }


def pre_activations(spec: NetSpec, weights: Mapping[str, np.ndarray], obs: np.ndarray) -> list[np.ndarray]:
    """Each Dense layer's pre-activation (B, units) in ``spec.dense_layers`` order: the trunk
    (a separate value trunk next), then logits, value."""
    pres, x = [], spec.scale(obs)
    ends = []
    for layers in (spec.trunk, spec.value_trunk) if spec.separate else (spec.trunk,):
        h = x
        for layer in layers or ():
            pre = h @ weights[layer.kernel] + weights[layer.bias]
            pres.append(pre)
            h = NUMPY_ACTIVATIONS[layer.activation](pre)
        ends.append(h)
    h_policy, h_value = ends[0], ends[-1]
    for head, h in ((spec.logits, h_policy), (spec.value, h_value)):
        pres.append(h @ weights[head.kernel] + weights[head.bias])
    return pres


def kink_distance(spec: NetSpec, weights: Mapping[str, np.ndarray], obs: np.ndarray) -> np.ndarray:
    """Per sample, the smallest |pre-activation| over layers with a kinked activation (inf if none)."""
    dist = np.full(obs.shape[0], np.inf)
    for layer, pre in zip(spec.dense_layers, pre_activations(spec, weights, obs)):
        if layer.activation in KINKED_ACTIVATIONS:
            dist = np.minimum(dist, np.abs(pre).min(axis=1))
    return dist


def make_point(
    spec: NetSpec,
    weights: Mapping[str, np.ndarray],
    *,
    batch: int = 32,
    seed: int = 0,
    obs: np.ndarray | None = None,
    actions: np.ndarray | None = None,
    returns: np.ndarray | None = None,
    q_values: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    avoid_kinks: bool = True,
    kink_margin: float = 1e-3,
) -> Point:
    """Draw a reproducible check point; anything passed explicitly is used as given.

    Observations, returns and Q-values are standard normal, actions uniform. With
    ``avoid_kinks`` (default) every sample whose pre-activation in a ReLU/ELU layer
    lies within ``kink_margin`` of 0 is redrawn. Why: at a kink the loss is not
    differentiable; TensorFlow's ReLU gradient takes the right-hand convention
    relu'(0) = 0 (as does the symbolic side, via ``Heaviside(x, 0)``), but a central
    difference straddling 0 measures the mean of the one-sided slopes, 1/2. The
    margin (1e-3) is far above the largest pre-activation change any single finite
    difference step (about 6e-6 relative) can cause, so every perturbed loss stays
    on one smooth piece. Pass ``avoid_kinks=False`` with chosen ``obs`` to put a
    point exactly on a kink on purpose.
    """
    if batch < 1:
        raise ConfigError(f"batch must be >= 1; got {batch}")
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    given_obs = obs is not None
    obs = np.array(obs, dtype=np.float64) if given_obs else rng.standard_normal((batch, spec.obs_dim))
    if obs.ndim != 2 or obs.shape[1] != spec.obs_dim:
        raise ConfigError(f"obs must have shape (batch, {spec.obs_dim}); got {obs.shape}")
    batch = obs.shape[0]
    if avoid_kinks and any(layer.activation in KINKED_ACTIVATIONS for layer in spec.dense_layers):
        if given_obs:
            raise ConfigError("avoid_kinks redraws observations; pass avoid_kinks=False with explicit obs")
        redrawn = 0
        for _ in range(100):
            bad = kink_distance(spec, weights, obs) < kink_margin
            if not bad.any():
                break
            redrawn += int(bad.sum())
            obs[bad] = rng.standard_normal((int(bad.sum()), spec.obs_dim))
        else:
            raise ConfigError(
                f"could not draw observations whose pre-activations stay {kink_margin} away from "
                "ReLU/ELU kinks (a unit may be constant at 0); pass avoid_kinks=False"
            )
        notes.append(
            f"kinks avoided: every ReLU/ELU pre-activation is >= {kink_margin:g} from 0 ({redrawn} samples redrawn)"
        )
    elif any(layer.activation in KINKED_ACTIVATIONS for layer in spec.dense_layers):
        dist = kink_distance(spec, weights, obs)
        if (dist < kink_margin).any():
            notes.append(
                f"{int((dist == 0).sum())} samples lie exactly on a ReLU/ELU kink and "
                f"{int(((dist > 0) & (dist < kink_margin)).sum())} near one: central differences "
                "there measure the mean one-sided slope (1/2 for ReLU), not TensorFlow's relu'(0)=0"
            )
    if spec.gaussian:
        # Gaussian actions: standard normal draws (unclipped, as the loss sees them).
        actions = (
            np.asarray(actions, dtype=np.float64)
            if actions is not None
            else rng.standard_normal((batch, spec.n_actions))
        )
        if actions.shape != (batch, spec.n_actions):
            raise ConfigError(
                f"a Gaussian policy's actions must have shape (batch, {spec.n_actions}); got {actions.shape}"
            )
    elif spec.policy in ("multi_categorical", "bernoulli"):
        sizes = spec.nvec if spec.nvec is not None else (2,) * spec.n_actions
        actions = (
            np.asarray(actions, dtype=np.int64)
            if actions is not None
            else np.stack([rng.integers(0, k, size=batch) for k in sizes], axis=1).astype(np.int64)
        )
        if actions.shape != (batch, len(sizes)) or ((actions < 0) | (actions >= np.asarray(sizes))).any():
            raise ConfigError(f"actions must have shape (batch, {len(sizes)}) with sub-action j in [0, {sizes}[j])")
    else:
        actions = (
            np.asarray(actions, dtype=np.int64)
            if actions is not None
            else rng.integers(0, spec.n_actions, size=batch).astype(np.int64)
        )
        if actions.shape != (batch,):
            raise ConfigError("actions must have shape (batch,)")
        if ((actions < 0) | (actions >= spec.n_actions)).any():
            raise ConfigError(f"actions must lie in [0, {spec.n_actions})")
    returns = np.asarray(returns, dtype=np.float64) if returns is not None else rng.standard_normal(batch)
    q_values = (
        np.asarray(q_values, dtype=np.float64) if q_values is not None else rng.standard_normal((batch, spec.n_actions))
    )
    if returns.shape != (batch,) or q_values.shape != (batch, spec.n_actions):
        raise ConfigError("returns must have shape (batch,), q_values (batch, n_actions)")
    if mask is not None:
        mask = np.asarray(mask, dtype=np.float64)
        if mask.shape != (batch,):
            raise ConfigError(f"mask must have shape ({batch},); got {mask.shape}")
    weights = {k: np.array(v, dtype=np.float64) for k, v in weights.items()}
    return Point(weights, obs, actions, returns, q_values, mask, notes, spec.nvec)
