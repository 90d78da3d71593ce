"""Atari 2600 games (ALE, the ``atari`` extra): the zoo's preprocessing, built from gymnasium's wrappers.

The stack of one env, innermost first:

    gym.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.0)   # as the zoo's NoFrameskip-v4
    AtariPreprocessing(noop_max=30, frame_skip=4, screen_size=84, grayscale)  # max-pooled, uint8 (84, 84)
    GameEpisodes            # an episode ends at every lost life; the game's own return in info
    ClipReward(-1, 1)       # training only: rewards clipped, as the zoo's AtariWrapper
    FrameStackObservation(4, padding "zero")                              # uint8 (4, 84, 84)

Why not ``AtariPreprocessing(terminal_on_life_loss=True)``: gymnasium's wrapper then
*resets the whole game* at a lost life, so the agent would only ever play its first
life and the logged return would be that life's. The zoo (OpenAI Baselines'
EpisodicLifeEnv) instead ends the *episode* (a true terminal for the critic: no
bootstrap past a lost life) and lets the game go on: the next ``reset()`` is a no-op
step, not a new game. [`GameEpisodes`][a2c.envs.atari.GameEpisodes] does that, presses FIRE after every
(re)start in games that wait for it (Breakout), and keeps the bookkeeping a learner
must not get wrong: the raw, unclipped return and length of the *whole game* are
reported once, as ``info["episode"] = {"r", "l", "t"}`` at the game's real end
(gymnasium's RecordEpisodeStatistics format, which the vector env merges into
``infos["episode"]``/``infos["_episode"]`` for
[`a2c.trainers.rollout.RolloutCollector`][a2c.trainers.rollout.RolloutCollector]), and ``info["game_over"]`` tells
single-env loops (evaluation, GIFs) whether a termination was a lost life or the end of the game.

With gymnasium's NEXT_STEP autoreset the step after a lost life is the vector env's
reset step, which here plays the no-op (and FIRE) of the continuing game; its
transition is masked out of the loss like every reset step ([`a2c.trainers.rollout`][a2c.trainers.rollout]), and
the rewards of those steps still count towards the game's return.

Training (``atari_vector = "ale"``, the default) uses ale-py's C++ vector env instead
([`NativeGames`][a2c.envs.atari.NativeGames]): the same preprocessing (no-op starts, frame skip 4 max-pooled,
84x84 grey, 4 stacked frames, FIRE at a new game; the same frames) in C++ threads, in
a fraction of the wrapper stack's time (results/atari_benchmark.md). Its own
``episodic_life`` resets the *whole game* at a lost life (measured), so it runs
without it, with raw rewards, and NativeGames adds the life-loss episodes, whole-game
tallies and clipping in numpy, as GameEpisodes does. ``"gymnasium"`` keeps the
wrapper stack (a SyncVectorEnv); single envs (evaluation, GIFs) always use it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from a2c.common.errors import EnvError
from a2c.config.presets import is_ale_game

if TYPE_CHECKING:
    from ale_py.env import AtariEnv

NOOP_MAX = 30
FRAME_SKIP = 4
SCREEN_SIZE = 84
FRAME_STACK = 4
#: The zoo trains on NoFrameskip-v4 games: no sticky actions.
REPEAT_ACTION_PROBABILITY = 0.0
NOOP, FIRE = 0, 1
#: Threads of the native vector env's emulators: both cores of the 2-core machine it was measured on
#: (one thread stepped 16 games in 64 ms per update against 36 ms on two, an earlier make bench-atari);
#: they only run while the learner waits for the step.
ALE_THREADS = 2
EXTRA = "pip install 'a2c[atari]' (ale-py and opencv-python-headless)"


def is_atari(env_id: str) -> bool:
    """An Arcade Learning Environment game id (``ALE/Pong-v5``, ``PongNoFrameskip-v4``): the config's test, so that
    every id that gets the Atari settings is also built as an Atari game."""
    return is_ale_game(env_id)


def register_atari() -> None:
    """Register the ALE games with gymnasium (ale-py ships the ROMs), or EnvError naming the extra."""
    try:
        import ale_py
        import cv2  # noqa: F401  (AtariPreprocessing resizes with it)
    except ImportError as e:
        raise EnvError(f"Atari games need the atari extra ({e.name} is missing): {EXTRA}") from None
    gym.register_envs(ale_py)


class GameEpisodes(gym.Wrapper):
    """Episodes end at every lost life; games end (and are reset) only when they are over.

    ``terminal_on_life_loss=False`` keeps one episode per game (still reporting
    ``info["episode"]`` and ``info["game_over"]``). ``fire`` presses FIRE after every
    (re)start; by default when the game's second action is FIRE, as the zoo does.
    """

    def __init__(self, env: gym.Env, terminal_on_life_loss: bool = True, fire: bool | None = None) -> None:
        super().__init__(env)
        meanings = cast("AtariEnv", env.unwrapped).get_action_meanings()
        self.terminal_on_life_loss = terminal_on_life_loss
        self.fire = (len(meanings) > 2 and meanings[FIRE] == "FIRE") if fire is None else fire
        self.lives = 0
        self.game_over = True  # the first reset starts a game
        self.game_return, self.game_length, self.game_start = 0.0, 0, 0.0
        self.frame_seen = -1  # the emulator's frame number after our last step

    @property
    def ale(self) -> Any:
        return cast("AtariEnv", self.env.unwrapped).ale

    def _tally(self, step: tuple) -> tuple:
        """Count a step of the game; at its end put the game's return and length in info."""
        obs, reward, terminated, truncated, info = step
        self.game_return += float(reward)
        self.game_length += 1
        self.frame_seen = self.ale.getEpisodeFrameNumber()
        lives = self.ale.lives()
        life_lost = 0 < lives < self.lives
        self.lives = lives
        self.game_over = bool(terminated or truncated)
        info = {**info, "game_over": self.game_over}
        if self.game_over:
            info["episode"] = {
                "r": np.float64(self.game_return),
                "l": np.int64(self.game_length),
                "t": np.float64(round(time.perf_counter() - self.game_start, 6)),
            }
        elif life_lost and self.terminal_on_life_loss:
            terminated = True
        return obs, reward, terminated, truncated, info

    def step(self, action: Any) -> tuple:
        return self._tally(self.env.step(action))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple:
        # A new game when the last one is over, when asked with a seed, or when the emulator is not
        # at the frame we left it (it was reset underneath us, e.g. an env rebuilt from a checkpoint).
        fresh = self.game_over or seed is not None or self.ale.getEpisodeFrameNumber() != self.frame_seen
        ended: dict[str, Any] = {}
        if not fresh:
            obs, _, _, _, info = self._tally(self.env.step(NOOP))  # the game goes on
            if self.game_over:  # it ended during the no-op: its return is reported with this reset
                ended, fresh = {"episode": info["episode"]}, True
        if fresh:
            obs, info = self.env.reset(seed=seed, options=options)
            info = {**info, **ended}
            self.game_return, self.game_length, self.game_start = 0.0, 0, time.perf_counter()
            self.game_over = False
        if self.fire:
            obs, _, _, _, _ = self._tally(self.env.step(FIRE))
            if self.game_over:  # a game over at the first FIRE: start a new one rather than stall
                return self.reset()
        self.lives = self.ale.lives()
        self.frame_seen = self.ale.getEpisodeFrameNumber()
        return obs, {**info, "game_over": False}


def make_atari_env(
    env_id: str, *, clip_rewards: bool = False, terminal_on_life_loss: bool = True, render_mode: str | None = None
) -> gym.Env:
    """One preprocessed game (see the module docstring); training clips rewards, evaluation does not."""
    register_atari()
    name = env_id.split(":", 1)[-1]
    render: dict[str, Any] = {"render_mode": render_mode} if render_mode else {}
    try:
        env = gym.make(name, frameskip=1, repeat_action_probability=REPEAT_ACTION_PROBABILITY, **render)
    except gym.error.Error as e:
        raise EnvError(f"unknown environment {env_id!r}: {e}") from None
    env = gym.wrappers.AtariPreprocessing(
        env,
        noop_max=NOOP_MAX,
        frame_skip=FRAME_SKIP,
        screen_size=SCREEN_SIZE,
        terminal_on_life_loss=False,
        grayscale_obs=True,
    )
    env = GameEpisodes(env, terminal_on_life_loss=terminal_on_life_loss)
    if clip_rewards:
        env = gym.wrappers.ClipReward(env, -1.0, 1.0)
    return gym.wrappers.FrameStackObservation(env, FRAME_STACK, padding_type="zero")


class NativeGames(gym.vector.VectorWrapper):
    """ale-py's AtariVectorEnv (no episodic_life, raw rewards) with [`GameEpisodes`][a2c.envs.atari.GameEpisodes]'
    semantics.

    A lost life (``0 < lives < previous lives``) ends the episode (terminated); the step
    after it is the episode's reset step, as with NEXT_STEP autoreset: its action is
    replaced by FIRE (games that wait for it) or NOOP and the game goes on. The native
    env resets a game only after the game's own end. Raw rewards add up to the game's
    return, reported with its length (agent steps, the life-loss reset steps included)
    in ``infos["episode"]``/``infos["_episode"]`` at the game's last step.
    """

    def __init__(self, env: gym.vector.VectorEnv, *, clip_rewards: bool = True, fire: bool = True) -> None:
        super().__init__(env)
        self.clip_rewards = clip_rewards
        self.restart_action = FIRE if fire else NOOP
        n = env.num_envs
        self.lives = np.zeros(n, np.int64)
        self.life_lost = np.zeros(n, bool)  # the last step lost a life: this step restarts the play
        self.game_over = np.zeros(n, bool)  # the last step ended the game: this step is the native reset
        self.game_return = np.zeros(n)
        self.game_length = np.zeros(n, np.int64)
        self.game_start = np.zeros(n)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple:
        obs, info = self.env.reset(seed=seed, options=options)  # new games (those of options["reset_mask"])
        new = (options or {}).get("reset_mask", np.ones(self.num_envs, bool))
        self.lives[new] = info["lives"][new]
        self.life_lost[new] = self.game_over[new] = False
        self.game_return[new], self.game_length[new], self.game_start[new] = 0.0, 0, time.perf_counter()
        return obs, info

    def step(self, actions: np.ndarray) -> tuple:
        actions = np.where(self.life_lost, self.restart_action, np.asarray(actions)).astype(np.int64)
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        playing = ~self.game_over  # a game-over's next step is the new game's first observation
        now = time.perf_counter()
        self.game_return[self.game_over], self.game_length[self.game_over] = 0.0, 0
        self.game_start[self.game_over] = now
        self.game_return += np.where(playing, rewards, 0)
        self.game_length += playing
        lives = np.asarray(info["lives"], np.int64)
        self.game_over = terminated | truncated
        self.life_lost = ~self.game_over & playing & (0 < lives) & (lives < self.lives)
        self.lives = lives
        if self.game_over.any():
            info = {
                **info,
                "_episode": self.game_over.copy(),
                "episode": {
                    "r": np.where(self.game_over, self.game_return, 0.0),
                    "l": np.where(self.game_over, self.game_length, 0),
                    "t": np.where(self.game_over, np.round(now - self.game_start, 6), 0.0),
                },
            }
        rewards = np.clip(rewards, -1, 1) if self.clip_rewards else rewards
        return obs, rewards.astype(np.float64), terminated | self.life_lost, truncated, info


#: The native env's preprocessing: the stack's (its frames are equal, tested), and no life or reward handling.
ALE_SETTINGS: dict[str, Any] = dict(
    repeat_action_probability=REPEAT_ACTION_PROBABILITY,
    img_height=SCREEN_SIZE,
    img_width=SCREEN_SIZE,
    grayscale=True,
    stack_num=FRAME_STACK,
    frameskip=FRAME_SKIP,
    maxpool=True,
    noop_max=NOOP_MAX,
    episodic_life=False,
    life_loss_info=False,
    reward_clipping=False,
    autoreset_mode=AutoresetMode.NEXT_STEP,
)


def ale_game(env_id: str) -> tuple[str, bool]:
    """The ROM name of an ``ALE/...`` id and whether the game waits for FIRE, or EnvError."""
    register_atari()
    name = env_id.split(":", 1)[-1]
    try:
        game = gym.spec(name).kwargs["game"]
    except gym.error.Error as e:
        raise EnvError(f"unknown environment {env_id!r}: {e}") from None
    import ale_py

    ale = ale_py.ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)  # as ale-py's AtariEnv does: no ROM report
    rom = ale_py.roms.get_rom_path(game)
    assert rom is not None  # ale-py registers only the games whose ROMs it ships
    ale.loadROM(rom)
    actions = ale.getMinimalActionSet()
    return game, len(actions) > 2 and actions[FIRE] == ale_py.Action.FIRE


def make_atari_vec_env(
    env_id: str, n_envs: int, vector: str = "ale", *, clip_rewards: bool = True
) -> gym.vector.VectorEnv:
    """``n_envs`` training games, NEXT_STEP autoreset (as every a2c env), whole games reported.

    ``vector="ale"``: ale-py's native vector env in [`NativeGames`][a2c.envs.atari.NativeGames]; ``"gymnasium"``:
    the wrapper stack in a SyncVectorEnv (no vector RecordEpisodeStatistics: it would
    count lives; [`GameEpisodes`][a2c.envs.atari.GameEpisodes] reports games).
    """
    if vector not in ("ale", "gymnasium"):
        raise ValueError(f"vector must be 'ale' or 'gymnasium'; got {vector!r}")
    if vector == "ale":
        from ale_py.vector_env import AtariVectorEnv

        game, fire = ale_game(env_id)
        native = AtariVectorEnv(game, n_envs, num_threads=min(ALE_THREADS, n_envs), use_fire_reset=fire, **ALE_SETTINGS)
        return NativeGames(native, clip_rewards=clip_rewards, fire=fire)
    make_atari_env(env_id).close()  # fails here, with one line, for a missing extra or an unknown game
    return gym.vector.SyncVectorEnv(
        [lambda: make_atari_env(env_id, clip_rewards=clip_rewards) for _ in range(n_envs)],
        autoreset_mode=AutoresetMode.NEXT_STEP,
    )
