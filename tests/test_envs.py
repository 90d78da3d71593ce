import re

import numpy as np
import pytest
from conftest import ConstantRewardEnv, IdentityEnv, TerminateAfterEnv
from gymnasium.utils.env_checker import check_env

from a2c.common.errors import EnvError
from a2c.envs.make import env_spaces, make_env, make_vec_env
from a2c.envs.spaces import ObsSpec, observation_spec


@pytest.mark.parametrize("env_cls", [IdentityEnv, ConstantRewardEnv, TerminateAfterEnv])
def test_custom_test_envs_follow_the_api(env_cls):
    check_env(env_cls(), skip_render_check=True)


def test_cartpole_uses_numpy_vector_env_and_records_episodes():
    env = make_vec_env("CartPole-v1", 4)
    assert "CartPoleVectorEnv" in str(env)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 4) and obs.dtype == np.float32
    seen = False
    for _ in range(200):
        obs, r, term, trunc, info = env.step(np.zeros(4, np.int64))  # always push left: falls fast
        if "_episode" in info and info["_episode"].any():
            seen = True
            assert np.all(info["episode"]["l"][info["_episode"]] > 0)
    assert seen


def test_discrete_observations_are_one_hot():
    env = make_vec_env("A2CTest/Identity-v0", 3)
    obs, _ = env.reset(seed=1)
    assert obs.shape == (3, 3) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs.sum(axis=1), 1.0)
    obs_space, action_space = env_spaces("A2CTest/Identity-v0")
    assert observation_spec(obs_space) == ObsSpec((3,), "float32") and action_space.n == 3


def test_blackjack_tuple_observations_are_one_hot_keys_by_position():
    obs_space, _ = env_spaces("Blackjack-v1")
    spec = observation_spec(obs_space)
    assert spec.keys == ("0", "1", "2") and [spec[k].shape for k in spec.keys] == [(32,), (11,), (2,)]


def test_observation_specs():
    for env_id, size, n in (("CartPole-v1", 4, 2), ("Acrobot-v1", 6, 3), ("LunarLander-v3", 8, 4)):
        obs_space, action_space = env_spaces(env_id)
        assert observation_spec(obs_space) == ObsSpec.flat(size) and action_space.n == n


@pytest.mark.parametrize(
    "env_id,needle",
    [
        ("NoSuchEnv-v0", "unknown environment 'NoSuchEnv-v0'"),
        ("A2CTest/UnboundedBox-v0", "A2CTest/UnboundedBox-v0 has an unbounded Box action space Box(-inf, inf, (2,)"),
        ("A2CTest/TupleAction-v0", "A2CTest/TupleAction-v0 has action space Tuple(Discrete(3), Discrete(2))"),
        ("A2CTest/EmptyMultiDiscrete-v0", "A2CTest/EmptyMultiDiscrete-v0 has action space MultiDiscrete([])"),
        ("A2CTest/SequenceObs-v0", "observation space Sequence(Discrete(3)"),
        ("A2CTest/DictOfTuple-v0", "observation key 'bag' of space Tuple(Discrete(2))"),
    ],
)
def test_unsupported_envs_are_refused_with_the_space_named(env_id, needle):
    with pytest.raises(EnvError, match=re.escape(needle)):
        make_vec_env(env_id, 2)
    with pytest.raises(EnvError):
        make_env(env_id)
