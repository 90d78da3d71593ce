"""``a2c evaluate``: every kind of PATH, --json, --sample, --gif, and every error path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from a2c.agent.model import build_actor_critic  # noqa: E402
from a2c.artifacts.evaluate import EVAL_SEED_BASE, evaluate_policy  # noqa: E402
from a2c.artifacts.export import export_saved_model  # noqa: E402
from a2c.artifacts.gif import record_gif  # noqa: E402
from a2c.artifacts.loading import evaluate_path  # noqa: E402
from a2c.artifacts.saving import save_model  # noqa: E402
from a2c.cli.main import main  # noqa: E402
from a2c.common.errors import ConfigError, EnvError, ModelFileError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(shared_run_dir: Path) -> Path:
    return shared_run_dir


def evaluate_json(capsys: pytest.CaptureFixture, *args: str) -> dict:
    assert main(["evaluate", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# ----------------------------------------------------------------------------- PATH kinds


def test_each_kind_of_path_gives_the_same_greedy_returns(run_dir, capsys):
    results = {
        "run dir": evaluate_json(capsys, str(run_dir), "--episodes", "3"),
        ".keras": evaluate_json(capsys, str(run_dir / "model.keras"), "--episodes", "3"),
        "SavedModel": evaluate_json(capsys, str(run_dir / "saved_model"), "--episodes", "3"),
    }
    formats = {name: r["format"] for name, r in results.items()}
    assert formats == {"run dir": "keras", ".keras": "keras", "SavedModel": "saved_model"}
    for r in results.values():
        assert r["env_id"] == "CartPole-v1" and r["env_source"] == "run config"
        assert r["policy"] == "greedy" and r["episodes"] == 3
        assert r["seeds"] == [EVAL_SEED_BASE, EVAL_SEED_BASE + 1, EVAL_SEED_BASE + 2]
        assert r["returns"] == results["run dir"]["returns"]
    # The same numbers as evaluate_policy with the trainer's greedy policy.
    from a2c.agent.policy import make_greedy

    model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    direct = evaluate_policy(make_greedy(model, 3), "CartPole-v1", 3, EVAL_SEED_BASE)
    assert direct.returns == results["run dir"]["returns"]


def test_json_fields_and_text_output(run_dir, capsys):
    r = evaluate_json(capsys, str(run_dir), "--episodes", "2", "--seed", "7")
    for key in (
        "mean_return",
        "std_return",
        "min_return",
        "max_return",
        "mean_length",
        "episodes",
        "returns",
        "lengths",
        "seeds",
        "model",
        "format",
        "env_id",
        "policy",
        "seed",
    ):
        assert key in r, key
    assert r["seeds"] == [7, 8] and r["seed"] == 7
    assert r["min_return"] == min(r["returns"]) and r["max_return"] == max(r["returns"])
    assert r["mean_return"] == pytest.approx(np.mean(r["returns"]))
    assert r["std_return"] == pytest.approx(np.std(r["returns"]))
    assert main(["evaluate", str(run_dir), "--episodes", "2", "--seed", "7"]) == 0
    text = capsys.readouterr().out
    assert f"{r['mean_return']:.2f} +/- {r['std_return']:.2f}" in text
    assert f"min {r['min_return']:.2f}" in text and f"max {r['max_return']:.2f}" in text


def test_sampling_is_seeded_per_episode(run_dir, capsys):
    a = evaluate_json(capsys, str(run_dir / "saved_model"), "--episodes", "4", "--sample", "--seed", "5")
    b = evaluate_json(capsys, str(run_dir), "--episodes", "4", "--sample", "--seed", "5")
    assert a["policy"] == "sample" and a["returns"] == b["returns"]  # both formats, same draws
    # Episode k depends on seed S+k only: a run starting one seed later shifts by one.
    c = evaluate_json(capsys, str(run_dir), "--episodes", "3", "--sample", "--seed", "6")
    assert c["returns"] == b["returns"][1:]


def test_env_outside_a_run_dir(run_dir, tmp_path):
    shutil.copytree(run_dir / "saved_model", tmp_path / "exported")
    shutil.copy(run_dir / "model.keras", tmp_path / "policy.keras")
    result, info = evaluate_path(tmp_path / "exported", episodes=1)
    assert (info["env_id"], info["env_source"]) == ("CartPole-v1", "export metadata")
    result, info = evaluate_path(tmp_path / "policy.keras", episodes=1)
    assert (info["env_id"], info["env_source"]) == ("CartPole-v1", "default")
    result, info = evaluate_path(tmp_path / "policy.keras", "CartPole-v1", episodes=1)
    assert info["env_source"] == "--env"


def test_gif_is_a_small_valid_gif_of_the_first_episode(run_dir, tmp_path, capsys):
    gif = tmp_path / "episode.gif"
    r = evaluate_json(capsys, str(run_dir / "saved_model"), "--episodes", "2", "--gif", str(gif))
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.width <= 240
        assert im.n_frames >= 2
    assert gif.stat().st_size < 1_000_000
    assert r["gif_seed"] == EVAL_SEED_BASE and r["gif_return"] == r["returns"][0]
    # sampled: the GIF's episode draws from episode 0's generator, so it replays episode 0 too
    r = evaluate_json(capsys, str(run_dir), "--episodes", "2", "--sample", "--seed", "3", "--gif", str(gif))
    assert r["gif_seed"] == 3 and r["gif_return"] == r["returns"][0]


def test_gif_frames_are_thinned(tmp_path):
    gif = tmp_path / "thin.gif"
    stats = record_gif(lambda obs: np.zeros(len(obs), np.int32), "CartPole-v1", 0, gif, max_frames=4, width=60)
    assert stats["gif_length"] >= 8 and stats["gif_frames"] <= 4
    with Image.open(gif) as im:
        assert im.width == 60 and im.n_frames <= 4


# ----------------------------------------------------------------------------- errors


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "a2c", "evaluate", *args, "--episodes", "1"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    (tmp_path / "notes.keras").write_text("this is a text file, not a Keras archive\n")
    (tmp_path / "random_dir").mkdir()
    (tmp_path / "random_dir" / "data.csv").write_text("a,b\n1,2\n")
    wrong = build_actor_critic(6, 3, (8,), seed=0)  # Acrobot-sized
    save_model(wrong, tmp_path / "acrobot.keras")
    cases = {  # started together: each process spends its time importing TensorFlow
        "missing path": (_cli(str(tmp_path / "nope")), "model path not found"),
        "text file renamed .keras": (_cli(str(tmp_path / "notes.keras")), "not a .keras archive"),
        "random directory": (_cli(str(tmp_path / "random_dir")), "neither a run directory"),
        "shape mismatch": (_cli(str(tmp_path / "acrobot.keras"), "--env", "CartPole-v1"), "does not fit CartPole-v1"),
    }
    for name, (proc, message) in cases.items():
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 2, (name, err[-2000:])
        assert "Traceback" not in out + err, name
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("a2c evaluate: error:") and message in lines[0], (name, err)
        assert out == "", name


def _foreign_zip(p: Path) -> Path:
    with zipfile.ZipFile(p / "foreign.keras", "w") as z:
        z.writestr("readme.txt", "a zip, but not a Keras model")
    return p / "foreign.keras"


def _not_actor_critic(p: Path) -> Path:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.save(p / "mlp.keras")
    return p / "mlp.keras"


def _corrupt_saved_model(p: Path) -> Path:
    (p / "sm").mkdir()
    (p / "sm" / "saved_model.pb").write_bytes(b"\x00garbage\xff" * 10)
    return p / "sm"


def _foreign_saved_model(p: Path) -> Path:
    module = tf.Module()
    module.double = tf.function(lambda x: 2 * x, input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(p / "foreign_sm"))
    return p / "foreign_sm"


def _mismatched_saved_model(p: Path) -> Path:
    export_saved_model(build_actor_critic(6, 3, (8,), seed=0), p / "acrobot_sm", env_id="CartPole-v1")
    return p / "acrobot_sm"


def _other_suffix(p: Path) -> Path:
    (p / "model.txt").write_text("hello")
    return p / "model.txt"


def _empty_run_dir(p: Path) -> Path:
    (p / "config.toml").write_text('env_id = "CartPole-v1"\n')
    return p


@pytest.mark.parametrize(
    "make, error, message",
    [
        (_foreign_zip, ModelFileError, "cannot load model"),
        (_not_actor_critic, ModelFileError, "not an a2c actor-critic"),
        (_corrupt_saved_model, ModelFileError, "cannot load SavedModel"),
        (_foreign_saved_model, ModelFileError, "not an a2c export"),
        (_mismatched_saved_model, ModelFileError, "does not fit CartPole-v1"),
        (_other_suffix, ModelFileError, "expected a run directory, a .keras file"),
        (_empty_run_dir, ModelFileError, "neither a run directory"),
    ],
)
def test_model_errors(tmp_path, capsys, make, error, message):
    path = make(tmp_path)
    with pytest.raises(error, match=message):
        evaluate_path(path, episodes=1)
    assert main(["evaluate", str(path), "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "args, error, message",
    [
        (["--episodes", "0"], ConfigError, "at least 1"),
        (["--gif", "episode.png"], ConfigError, ".gif"),
        (["--env", "NoSuchEnv-v0"], EnvError, "unknown environment"),
        (["--env", "Acrobot-v1"], ModelFileError, "does not fit Acrobot-v1"),
    ],
)
def test_flag_errors(run_dir, capsys, args, error, message):
    env = args[1] if args[0] == "--env" else None
    kwargs = {"episodes": int(args[1])} if args[0] == "--episodes" else {"episodes": 1}
    with pytest.raises(error, match=message):
        evaluate_path(run_dir, env, gif=args[1] if args[0] == "--gif" else None, **kwargs)
    assert main(["evaluate", str(run_dir), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("artifact", ["model.keras", "saved_model"])
def test_committed_cartpole_model_loads_and_balances(artifact):
    """results/cartpole_model (written by `make results`) is a trained, loadable agent."""
    path = REPO / "results" / "cartpole_model" / artifact
    result, _ = evaluate_path(path, "CartPole-v1", episodes=3)
    assert result.mean >= 475
