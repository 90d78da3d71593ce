import pytest

from a2c.config import PRESETS, Config, coerce, make_config
from a2c.errors import ConfigError


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


@pytest.mark.parametrize("overrides,needle", [
    ({"gamma": 0.0}, "gamma"), ({"gamma": 1.5}, "gamma"), ({"total_steps": 0}, "total_steps"),
    ({"total_steps": -5}, "total_steps"), ({"n_envs": 0}, "n_envs"), ({"lr": -1e-3}, "lr"),
    ({"gae_lambda": 1.2}, "gae_lambda"), ({"optimizer": "sgd"}, "optimizer"),
    ({"activation": "swishy"}, "activation"), ({"hidden_sizes": "64,0"}, "hidden_sizes"),
    ({"max_grad_norm": -1}, "max_grad_norm"), ({"ent_coef": -0.1}, "ent_coef"),
    ({"total_steps": "many"}, "total_steps"), ({"n_steps": 2.5}, "n_steps"), ({"bogus": 1}, "bogus"),
])
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
