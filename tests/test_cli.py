"""The command line as a newcomer meets it (issue 25): imports from the current directory, printed
next steps that run, fast one-line errors, flag hints, and the step budget it really trains."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = Path(sys.executable).with_name("a2c")  # the installed ``a2c`` beside this Python

ENV_MODULE = '''
import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Tiny(gym.Env):
    """Five steps of reward = action."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(2, np.float32), float(action), False, self.t >= 5, {}


gym.register("Tiny-v0", entry_point="mypkg.envs:Tiny")
'''

TINY_TRAINING = ["--total-steps", "64", "--n-envs", "2", "--n-steps", "4", "--eval-every", "0"]
TINY_TRAINING += ["--final-eval-episodes", "0", "--no-progress"]


def _env_without_a2c_on_path() -> dict[str, str]:
    """This checkout's code under the installed console script, and no ``a2c`` on PATH."""
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "a2c").exists()]
    return {**os.environ, "PYTHONPATH": str(ROOT), "PATH": os.pathsep.join(path), "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.mark.skipif(not CONSOLE_SCRIPT.is_file(), reason="no a2c console script beside this Python")
def test_console_script_trains_an_env_module_of_the_current_directory(tmp_path):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "envs.py").write_text(ENV_MODULE)
    env = _env_without_a2c_on_path()
    train = subprocess.run(
        [str(CONSOLE_SCRIPT), "train", "--env", "mypkg.envs:Tiny-v0", "--run-dir", "run", *TINY_TRAINING],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert train.returncode == 0, train.stderr
    assert "trained 64 steps" in train.stdout
