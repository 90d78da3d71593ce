"""The command line as a newcomer meets it (issue 25): imports from the current directory, printed
next steps that run, fast one-line errors, flag hints, and the step budget it really trains."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from a2c.cli.invocation import a2c_command
from a2c.cli.main import main
from a2c.cli.parser import build_parser
from a2c.cli.train_command import next_steps, rounded_budget
from a2c.config.schema import Config

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
    # The printed next step runs as printed (from the same directory, with the env from config.toml).
    evaluate = next(line.strip() for line in train.stdout.splitlines() if " evaluate " in line)
    program = evaluate.split(" evaluate ")[0]
    run = subprocess.run(
        f"{program} evaluate run --episodes 2",
        shell=True,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "environment: mypkg.envs:Tiny-v0" in run.stdout and "2 episodes" in run.stdout


# --- the command that the printed next steps use (a2c.cli.invocation) -------------------------


@pytest.fixture
def script(tmp_path, monkeypatch):
    """An installed ``a2c`` script at tmp_path/.venv/bin/a2c, run from tmp_path; PATH finds nothing."""
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "a2c").write_text("#!/bin/sh\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    return bin_dir / "a2c"


def test_a2c_on_path_that_is_the_running_script_is_printed_as_a2c(script, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: str(script) if name == "a2c" else None)
    assert a2c_command(str(script)) == "a2c"
    assert a2c_command(".venv/bin/a2c") == "a2c"


def test_a2c_not_on_path_or_another_one_is_printed_as_the_path_that_ran(script, tmp_path, monkeypatch):
    assert a2c_command(".venv/bin/a2c") == ".venv/bin/a2c"  # make train's
    assert a2c_command(str(script)) == ".venv/bin/a2c"  # absolute, inside the current directory
    other = tmp_path / "elsewhere" / "a2c"
    other.parent.mkdir()
    other.write_text("#!/bin/sh\n")
    monkeypatch.setattr(shutil, "which", lambda name: str(other) if name == "a2c" else None)
    assert a2c_command(str(script)) == ".venv/bin/a2c"  # PATH's a2c is another installation
    monkeypatch.chdir(script.parent)
    assert a2c_command(str(script)) == "./a2c"  # never a bare name that PATH would look up
    monkeypatch.chdir(other.parent)
    assert a2c_command(str(script)) == str(script)  # outside the current directory: absolute


def test_python_m_a2c_is_printed_with_the_python_that_ran_it(tmp_path, monkeypatch):
    main_py = str(ROOT / "a2c" / "__main__.py")
    monkeypatch.setattr(shutil, "which", lambda name: sys.executable if name == "python" else None)
    assert a2c_command(main_py) == "python -m a2c"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.chdir(tmp_path)
    assert a2c_command(main_py) == f"{shlex.quote(sys.executable)} -m a2c"
    monkeypatch.setattr(sys, "executable", str(tmp_path / ".venv" / "bin" / "python"))
    assert a2c_command(main_py) == ".venv/bin/python -m a2c"


def test_called_from_python_it_is_a2c(script):
    assert a2c_command(str(ROOT / "tests" / "test_cli.py")) == "a2c"  # e.g. pytest's argv[0]


def test_next_steps_spell_a2c_and_tensorboard_as_they_run_from_here(script, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", [".venv/bin/a2c", "train"])
    monkeypatch.setattr(sys, "executable", str(script.with_name("python")))
    script.with_name("tensorboard").write_text("#!/bin/sh\n")
    text = next_steps(tmp_path / "runs" / "r1")
    assert "  .venv/bin/a2c evaluate " in text and "  .venv/bin/a2c plot " in text
    assert "  .venv/bin/tensorboard --logdir " in text
    monkeypatch.setattr(shutil, "which", lambda name: {"a2c": str(script), "tensorboard": "/x"}.get(name))
    text = next_steps(tmp_path / "runs" / "r1")
    assert "  a2c evaluate " in text and "  a2c plot " in text and "  tensorboard --logdir " in text


# --- path errors before TensorFlow ------------------------------------------------------------------

CHECK_WITHOUT_TENSORFLOW = """
import contextlib, io, json, sys
from a2c.cli.main import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    results.append([rc, err.getvalue()])
print(json.dumps([results, sorted(m for m in ("tensorflow", "keras") if m in sys.modules)]))
"""


def test_bad_paths_fail_in_one_line_before_tensorflow_starts(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "corrupt.keras").write_text("not a zip")
    run = tmp_path / "run"  # enough of a run directory to plot, which never needs TensorFlow
    run.mkdir()
    (run / "metrics.csv").write_text("global_step,rollout/ep_return_mean\n100,1.0\n200,2.0\n")
    (run / "config.toml").write_text('env_id = "CartPole-v1"\nseed = 0\n')
    missing, empty = str(tmp_path / "missing"), str(tmp_path / "empty")
    cases = [
        (["evaluate", missing], "model path not found"),
        (["evaluate", empty], "is neither a run directory"),
        (["evaluate", str(tmp_path / "notes.txt")], "expected a run directory, a .keras file"),
        (["evaluate", str(tmp_path / "corrupt.keras")], "not a .keras archive"),
        (["export", missing], "model path not found"),
        (["export", empty], "is not a run directory: it has no model.keras"),
        (["export", str(tmp_path / "notes.txt")], "expected a .keras file"),
        (["plot", missing], "run directory not found"),
        (["plot", str(run), empty], "is not a run directory: it has no metrics.csv"),
        (["verify", "--model", missing], "model path not found"),
        (["plot", str(run), "--out", str(tmp_path / "curves.png")], None),
    ]
    proc = subprocess.run(
        [sys.executable, "-c", CHECK_WITHOUT_TENSORFLOW, json.dumps([argv for argv, _ in cases])],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    results, heavy = json.loads(proc.stdout.splitlines()[-1])
    for (argv, message), (rc, err) in zip(cases, results):
        if message is None:
            assert rc == 0 and err == "", (argv, err)
            continue
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and message in lines[0], (argv, err)
        assert lines[0].startswith(f"a2c {argv[0]}: error: "), (argv, err)
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert heavy == []


# --- unknown flags of a2c train ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--learning-rate", "1e-3"], "unknown flag --learning-rate: did you mean --lr?"),
        (["--learning-rate=1e-3"], "unknown flag --learning-rate: did you mean --lr?"),
        (["--environment", "CartPole-v1"], "unknown flag --environment: did you mean --env?"),
        (["--total_steps", "100"], "unknown flag --total_steps: did you mean --total-steps?"),
        (["--overwite"], "unknown flag --overwite: did you mean --overwrite?"),
        (["--no-such-thing", "3"], "unknown flag --no-such-thing (see a2c train --help)"),
        (
            ["--num-envs", "4", "--lr", "1e-3", "--timesteps", "-5", "--foo"],
            "unknown flags --num-envs (did you mean --n-envs?), --timesteps (did you mean --total-steps?), --foo",
        ),
        (["CartPole-v1"], "unrecognized arguments: CartPole-v1 (a2c train takes flags only, e.g. --env ENV_ID)"),
    ],
)
def test_unknown_train_flags_get_the_config_files_hint_in_one_line(capsys, argv, message):
    assert main(["train", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"a2c train: error: {message}\n" and captured.out == ""


def test_valid_train_flags_still_parse(capsys):
    args, extra = build_parser().parse_known_args(["train", "--lr", "1e-3", "--env", "Acrobot-v1", "--no-progress"])
    assert extra == [] and args.lr == "1e-3" and args.env_id == "Acrobot-v1" and args.progress is False
    assert main(["train", "--lr", "1e-3", "--gamma", "2"]) == 2  # parsed, then refused by the config's check
    assert capsys.readouterr().err == "a2c train: error: gamma must be in (0, 1]; got 2.0\n"


def test_other_commands_keep_argparses_error():
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "runs/x", "--foo"])
    assert exit_info.value.code == 2


# --- the budget a2c train really trains -------------------------------------------------------------


def test_rounded_budget_says_the_steps_a_run_will_train():
    assert rounded_budget(Config(total_steps=1600, n_envs=16, n_steps=5)) is None  # 20 whole updates
    assert rounded_budget(Config(total_steps=1500, n_envs=16, n_steps=5)) == (
        "total_steps 1500 is not a multiple of the 80 steps of an update (n_envs 16 x n_steps 5): "
        "training 1520 steps (19 updates)"
    )
    assert "training 8 steps (1 update)" in str(rounded_budget(Config(total_steps=1, n_envs=2, n_steps=4)))


def test_train_says_before_training_that_it_rounds_the_budget_up(tmp_path, capsys):
    flags = ["--env", "CartPole-v1", "--total-steps", "1500", "--n-envs", "16", "--n-steps", "5"]
    flags += ["--run-dir", str(tmp_path / "run")]
    assert main(["train", *flags, "--eval-every", "0", "--final-eval-episodes", "0", "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "total_steps 1500 is not a multiple of the 80 steps of an update (n_envs 16 x n_steps 5): "
        "training 1520 steps (19 updates)"
    )
    assert lines[1] == f"run directory: {tmp_path / 'run'}"
    assert lines[2].startswith("trained 1520 steps in ")
