import re

import pytest

from a2c.common.errors import ConfigError
from a2c.config.presets import ATARI_PRESET, PRESETS, is_ale_game, preset_for
from a2c.config.resolve import make_config
from a2c.config.schema import Config, coerce


def test_defaults_validate_and_presets_apply():
    cfg = make_config({})
    assert cfg.env_id == "CartPole-v1"
    for key, value in PRESETS["CartPole-v1"].items():
        assert getattr(cfg, key) == value
    assert make_config({"env_id": "Acrobot-v1"}).n_envs == PRESETS["Acrobot-v1"]["n_envs"]
    assert cfg.batch_size == cfg.n_envs * cfg.n_steps
    assert cfg.n_updates * cfg.batch_size >= cfg.total_steps


def test_precedence_preset_toml_flags(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('env_id = "CartPole-v1"\nlr = 0.001\nn_envs = 4\nhidden_sizes = [32, 32]\n')
    cfg = make_config({"n_envs": 2}, toml)
    assert cfg.lr == 0.001 and cfg.n_envs == 2 and cfg.hidden_sizes == (32, 32)
    nested = tmp_path / "n.toml"
    nested.write_text("[a2c]\ngamma = 0.9\n")
    assert make_config({}, nested).gamma == 0.9


@pytest.mark.parametrize(
    "overrides,needle",
    [
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": 1.5}, "gamma"),
        ({"total_steps": 0}, "total_steps"),
        ({"total_steps": -5}, "total_steps"),
        ({"n_envs": 0}, "n_envs"),
        ({"lr": -1e-3}, "lr"),
        ({"gae_lambda": 1.2}, "gae_lambda"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"activation": "swishy"}, "activation"),
        ({"hidden_sizes": "64,0"}, "hidden_sizes"),
        ({"max_grad_norm": -1}, "max_grad_norm"),
        ({"ent_coef": -0.1}, "ent_coef"),
        ({"total_steps": "many"}, "total_steps"),
        ({"n_steps": 2.5}, "n_steps"),
        ({"bogus": 1}, "bogus"),
        ({"precision": "float16"}, "precision must be one of float32, bfloat16"),
        ({"precision": "bfloat16", "fused": True}, "precision bfloat16 is for convolutional models"),
        ({"precision": "bfloat16", "recurrent": "lstm"}, "precision bfloat16 is not supported with a recurrent"),
    ],
)
def test_bad_values_name_the_field(overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        make_config(overrides)


def test_bad_toml_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        make_config({}, tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("gamma = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        make_config({}, broken)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("gamma = 0.9\nlearning_rate = 1\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        make_config({}, unknown)


def test_coercion_from_strings():
    assert coerce("total_steps", "1e5") == 100_000
    assert coerce("total_steps", "200_000") == 200_000
    assert coerce("hidden_sizes", "128, 64") == (128, 64)
    assert coerce("normalize_advantage", "true") is True
    assert coerce("lr", "7e-4") == pytest.approx(7e-4)


def test_round_trip_through_dict():
    cfg = make_config({"seed": 3})
    assert Config(**{**cfg.to_dict(), "hidden_sizes": tuple(cfg.hidden_sizes)}) == cfg


# --- unknown keys get a hint; sectioned files are refused in one line --------------------


@pytest.mark.parametrize(
    "key,field",
    [
        ("learnin_rate", "lr"),
        ("learning_rate", "lr"),
        ("num_envs", "n_envs"),
        ("gama", "gamma"),
        ("max_grad_nrom", "max_grad_norm"),
        ("clip_grad_norm", "max_grad_norm"),
        ("entropy_coef", "ent_coef"),
    ],
)
def test_unknown_key_suggests_the_field(tmp_path, key, field):
    hint = f"{key} (did you mean {field}?)"
    with pytest.raises(ConfigError) as info:
        make_config({key: 1})
    assert hint in str(info.value) and "\n" not in str(info.value)
    toml = tmp_path / "c.toml"
    toml.write_text(f"gamma = 0.9\n{key} = 1\n")
    with pytest.raises(ConfigError) as info:
        make_config({}, toml)
    assert hint in str(info.value) and "\n" not in str(info.value)


def test_unknown_key_without_a_near_miss_gets_no_hint():
    with pytest.raises(ConfigError) as info:
        make_config({"bogus": 1})
    assert "bogus" in str(info.value) and "did you mean" not in str(info.value)


@pytest.mark.parametrize(
    "text,section",
    [
        ("[train]\nlr = 0.001\nn_envs = 4\n", "[train] (holding lr, n_envs)"),
        ("[a2c.optim]\nlr = 0.001\n", "[a2c.optim] (holding lr)"),
        ("[a2c]\ngamma = 0.9\n[a2c.optim]\nlr = 0.001\n", "[a2c.optim] (holding lr)"),
        ("gamma = 0.9\n[optim]\nlr = 0.001\n", "[optim] (holding lr)"),
        ("optim.lr = 0.001\n", "[optim] (holding lr)"),
    ],
)
def test_sectioned_toml_says_the_file_is_flat(tmp_path, text, section):
    toml = tmp_path / "c.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError) as info:
        make_config({}, toml)
    message = str(info.value)
    assert section in message and "flat" in message and "\n" not in message
    assert "unknown keys" not in message


def test_keys_beside_a2c_table_are_not_silently_dropped(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("gamma = 0.9\n[a2c]\nlr = 0.001\n")
    with pytest.raises(ConfigError, match=r"both under \[a2c\] and outside it \(gamma\).*flat"):
        make_config({}, toml)


def test_workers_divide_the_envs():
    cfg = make_config({"workers": 2})  # CartPole's preset: 16 envs
    assert (cfg.n_envs, cfg.envs_per_worker) == (16, 8)
    cfg = make_config({"workers": 3, "envs_per_worker": 2})
    assert (cfg.n_envs, cfg.envs_per_worker, cfg.batch_size) == (6, 2, 6 * cfg.n_steps)
    assert make_config({"workers": 2, "envs_per_worker": 4, "n_envs": 8}).n_envs == 8
    assert Config(**cfg.to_dict()).validate().envs_per_worker == 2  # as a run's config.toml reads back


@pytest.mark.parametrize(
    "overrides, needle",
    [
        ({"workers": 3}, "does not divide among 3 workers"),
        ({"workers": 2, "envs_per_worker": 3, "n_envs": 8}, "must be workers (2) x envs_per_worker (3)"),
        ({"async_updates": True}, "need workers > 0"),
        ({"ray_address": "head:6379"}, "need workers > 0"),
        ({"workers": 2, "async_updates": True, "normalize_reward": True}, "async updates (A3C) cannot normalise"),
        ({"workers": 2, "fused": True}, "fused mode collects its own rollouts"),
        ({"workers": -1}, "workers must be >= 0"),
    ],
)
def test_bad_worker_settings_name_the_problem(overrides, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        make_config(overrides)


def test_async_flag_spelling():
    from a2c.cli.parser import build_parser

    args = build_parser().parse_args(["train", "--workers", "2", "--async", "--ray-address", "auto"])
    assert (args.workers, args.async_updates, args.ray_address) == ("2", True, "auto")


@pytest.mark.parametrize(
    "env_id",
    ["ALE/Pong-v5", "ALE/Breakout-v5", "ALE/Seaquest-v5", "ALE/SpaceInvaders-v5", "ALE/Asterix-v5"]
    + ["SeaquestNoFrameskip-v4", "ale_py:ALE/Qbert-v5"],
)
def test_every_ale_game_gets_the_atari_settings_without_ale_py(env_id):
    """Any ALE id resolves to the one Atari preset (no ROMs needed: the config layer reads the id),
    sampled evaluations included; flags still win over it."""
    assert is_ale_game(env_id)
    cfg = make_config({"env_id": env_id})
    for key, value in ATARI_PRESET.items():
        assert getattr(cfg, key) == value, key
    assert cfg.eval_policy == "sampled" and cfg.trunk == "nature_cnn" and cfg.n_envs == 16
    assert make_config({"env_id": env_id, "eval_policy": "greedy", "n_envs": 4}).eval_policy == "greedy"


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MinAtar/Breakout-v1", "Pong-v0", "ALE", "LunarLander-v3"])
def test_other_envs_keep_their_settings_and_greedy_evaluations(env_id):
    assert not is_ale_game(env_id)
    cfg = make_config({"env_id": env_id})
    assert cfg.eval_policy == "greedy" and cfg.optimizer != "rmsprop_tf"
    assert preset_for(env_id) == PRESETS.get(env_id, {})


def test_eval_policy_is_validated():
    with pytest.raises(ConfigError, match="eval_policy must be one of greedy, sampled"):
        make_config({"eval_policy": "stochastic"})


def test_bfloat16_on_a_model_without_convolutions_is_refused_in_one_line(capsys):
    from a2c.cli.main import main

    assert main(["train", "--env", "CartPole-v1", "--precision", "bfloat16", "--total-steps", "80"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "precision bfloat16 is for convolutional models" in err[0] and "(4,)" in err[0]
