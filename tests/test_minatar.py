"""MinAtar (issue 26): (10, 10, C) bool grids read channels-last by the small CNN; a short run
trains, exports and evaluates from the SavedModel."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("minatar")

from a2c.agent.model import conv_layers  # noqa: E402
from a2c.artifacts.loading import evaluate_path  # noqa: E402
from a2c.config.resolve import make_config  # noqa: E402
from a2c.envs.make import env_spaces  # noqa: E402
from a2c.envs.spaces import image_layout, observation_spec  # noqa: E402
from a2c.run.train import train  # noqa: E402


def test_minatar_breakout_trains_exports_and_evaluates(tmp_path):
    obs_space, _ = env_spaces("MinAtar/Breakout-v1")
    spec = observation_spec(obs_space)
    assert spec.shape == (10, 10, 4) and spec.dtype == "float32" and image_layout(spec.shape) == "channels_last"
    cfg = make_config(
        {
            "env_id": "MinAtar/Breakout-v1",
            "total_steps": 800,
            "eval_every": 0,
            "final_eval_episodes": 2,
            "progress": False,
            "run_dir": str(tmp_path / "run"),
        }
    )
    assert (cfg.trunk, cfg.hidden_sizes) == ("nature_cnn", (128,))  # the preset
    result = train(cfg, quiet=True)
    assert [(c.filters, c.kernel_size) for c in conv_layers(result.model)] == [(16, (3, 3))]
    keras_eval = evaluate_path(result.run_dir / "model.keras", episodes=2)[0].returns
    np.testing.assert_allclose(keras_eval, evaluate_path(result.run_dir / "saved_model", episodes=2)[0].returns)
