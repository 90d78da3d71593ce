"""The A2C loss and the soft (entropy-regularised) policy loss of the seed notebook.

Both are pure functions of network outputs, so the trainer and the gradient
verifier ([`a2c.verify`][a2c.verify]) differentiate exactly the same code.
"""

from __future__ import annotations

import tensorflow as tf

from a2c.agent.distributions import CATEGORICAL, Distribution


def masked_mean(x: tf.Tensor, mask: tf.Tensor | None) -> tf.Tensor:
    """Mean over the entries where ``mask`` is 1 (all entries when it is None)."""
    if mask is None:
        return tf.reduce_mean(x)
    mask = tf.cast(mask, x.dtype)
    return tf.reduce_sum(x * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def a2c_loss(
    policy_params: tf.Tensor,
    values: tf.Tensor,
    actions: tf.Tensor,
    returns: tf.Tensor,
    *,
    vf_coef: float,
    ent_coef: float,
    normalize_advantage: bool = False,
    mask: tf.Tensor | None = None,
    distribution: Distribution = CATEGORICAL,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """A2C's total loss and its parts, on flat (batch,) tensors.

    ``policy_params`` are the distribution's parameters (for the default categorical
    policy, the logits). ``returns`` are the (GAE) targets and carry no gradient; the
    advantage is ``returns - values``. ``mask`` marks real transitions (gymnasium's
    next-step autoreset inserts one reset step per finished episode that must not count).
    """
    # The advantage only weights the score function: its gradient must not reach
    # the value head through the policy term.
    advantages = tf.stop_gradient(returns - values)
    if normalize_advantage:
        mean = masked_mean(advantages, mask)
        std = tf.sqrt(masked_mean(tf.square(advantages - mean), mask))
        advantages = (advantages - mean) / (std + 1e-8)
    log_probs = distribution.log_prob(policy_params, actions)
    policy_loss = -masked_mean(advantages * log_probs, mask)
    # The critic regresses on the returns (SB3's MSE, no 1/2 factor).
    value_loss = masked_mean(tf.square(returns - values), mask)
    # Maximising entropy keeps exploring, so it enters the loss with a minus sign.
    entropy = masked_mean(distribution.entropy(policy_params), mask)
    total = policy_loss + vf_coef * value_loss - ent_coef * entropy
    return total, {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "total_loss": total,
    }


def soft_policy_loss(logits: tf.Tensor, q_values: tf.Tensor, alpha: float = 1.0) -> tf.Tensor:
    """The seed notebook's soft policy objective, averaged over the batch.

    J(psi) = -sum_a pi(a|s) (Q(s, a) - alpha log pi(a|s)); Q carries no gradient.
    """
    log_p = CATEGORICAL.log_probs(logits)
    q = tf.stop_gradient(tf.cast(q_values, log_p.dtype))
    return -tf.reduce_mean(tf.reduce_sum(tf.exp(log_p) * (q - alpha * log_p), axis=-1))


def explained_variance(values: tf.Tensor, returns: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
    """1 - Var[returns - values] / Var[returns]: 1 is a perfect critic, <= 0 a useless one."""
    mean_r = masked_mean(returns, mask)
    var_r = masked_mean(tf.square(returns - mean_r), mask)
    err = returns - values
    var_err = masked_mean(tf.square(err - masked_mean(err, mask)), mask)
    return tf.where(var_r > 0, 1.0 - var_err / tf.maximum(var_r, 1e-12), tf.zeros_like(var_r))
