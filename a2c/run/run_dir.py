"""Run directories: where a run writes, and the refusal to mix a new run into an old one."""

from __future__ import annotations

import shlex
import shutil
from datetime import datetime
from pathlib import Path

from a2c.artifacts.saving import MODEL_FILE
from a2c.common.errors import RunDirError
from a2c.config.schema import Config
from a2c.run.checkpoint import CHECKPOINT_DIR

CURVES_FILE = "learning_curves.png"


def default_run_dir(cfg: Config) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.env_id}__s{cfg.seed}__{stamp}"


def prepare_run_dir(cfg: Config, overwrite: bool = False) -> Path:
    """Create the run directory, refusing to mix a new run into an old one."""
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} exists and is not a directory")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            raise RunDirError(
                f"run directory {run_dir} already holds a run; pass --overwrite to replace it, "
                f"--resume {shlex.quote(str(run_dir))} to continue it, or choose another --run-dir"
            )
        for name in ("metrics.csv", "evaluations.csv", "summary.json", "config.toml", MODEL_FILE, CURVES_FILE):
            (run_dir / name).unlink(missing_ok=True)
        for old in (run_dir / "tb").glob("events.*"):
            old.unlink()
        shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def resume_command(run_dir: Path) -> str:
    return f"a2c train --resume {shlex.quote(str(run_dir))}"
