"""Record one episode of a policy as a small animated GIF (``a2c evaluate --gif``, ``make results``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from a2c.agent.batch import Policy
from a2c.common.errors import ConfigError, EnvError
from a2c.envs.make import make_env, play_on
from a2c.envs.spaces import encode_observations, env_action

GIF_MAX_FRAMES = 150
GIF_WIDTH = 240


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def record_gif(
    policy: Policy,
    env_id: str,
    seed: int,
    path: str | Path,
    *,
    max_frames: int = GIF_MAX_FRAMES,
    width: int = GIF_WIDTH,
    env_kwargs: dict[str, Any] | None = None,
) -> dict[str, float | int]:
    """Play one episode (reset with ``seed``) with ``policy`` (batch 1) and save it as a GIF.

    Frames are downscaled to ``width`` pixels as they come and thinned to at most
    ``max_frames`` (the frame duration grows to match), so the file stays small and
    memory stays bounded however long the episode.
    """
    import imageio.v3 as iio
    from PIL import Image

    from a2c.common.files import atomic_write

    # Off-screen rendering needs no display; without this pygame's SDL complains about
    # XDG_RUNTIME_DIR on headless machines. Restored afterwards (a later window may want one).
    old_driver = os.environ.get("SDL_VIDEODRIVER")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    try:
        env, obs_space = make_env(env_id, render_mode="rgb_array", env_kwargs=env_kwargs)
    except BaseException:
        _restore_env("SDL_VIDEODRIVER", old_driver)
        raise
    frames: list[np.ndarray] = []
    stride: float = 1  # an int until the frames are thinned out at the end

    def keep(t: int) -> None:
        nonlocal frames, stride
        if t % stride:
            return
        frame = np.asarray(env.render())
        if frame.ndim != 3:
            raise EnvError(f"{env_id} does not render RGB frames; cannot record a GIF")
        image = Image.fromarray(frame[..., :3].astype(np.uint8))
        if image.width > width:
            image = image.resize((width, max(1, round(image.height * width / image.width))), Image.Resampling.BILINEAR)
        frames.append(np.asarray(image))
        if len(frames) > 2 * max_frames:
            frames, stride = frames[::2], stride * 2

    try:
        obs, _ = env.reset(seed=seed)
        total, t, done = 0.0, 0, False
        keep(0)
        while not done:
            action = np.asarray(policy(encode_observations([obs], obs_space)))[0]
            obs, reward, terminated, truncated, info = env.step(env_action(action, env.action_space))
            total += float(reward)
            t += 1
            obs, done, tally = play_on(env, obs, terminated, truncated, info)
            if tally is not None:
                total = float(tally["r"])
            keep(t)
        fps = float(env.metadata.get("render_fps") or 30)
    finally:
        env.close()
        _restore_env("SDL_VIDEODRIVER", old_driver)
    if len(frames) > max_frames:
        index = np.unique(np.linspace(0, len(frames) - 1, max_frames).round().astype(int))
        stride = stride * (len(frames) - 1) / max(len(index) - 1, 1)
        frames = [frames[i] for i in index]
    duration_ms = max(20, int(round(1000 * stride / fps)))

    def write(tmp: Path) -> None:
        iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=duration_ms, loop=0)

    try:
        atomic_write(path, write, suffix=".gif")
    except OSError as e:
        raise ConfigError(f"cannot write GIF {path}: {e.strerror or e}") from None
    return {"gif_return": total, "gif_length": t, "gif_frames": len(frames), "gif_seed": seed}
