"""Run logging: metrics.csv, evaluations.csv and TensorBoard events, in one place.

Keys are namespaced like SB3/CleanRL (``rollout/``, ``train/``, ``time/``, ``eval/``)
and the same names are used for CSV columns and TensorBoard tags.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import tensorflow as tf

METRIC_COLUMNS = (
    "global_step", "update",
    "rollout/ep_return_mean", "rollout/ep_length_mean", "rollout/episodes",
    "train/total_loss", "train/policy_loss", "train/value_loss", "train/entropy",
    "train/explained_variance", "train/grad_norm", "train/learning_rate",
    "time/steps_per_second", "time/elapsed_seconds",
)
EVAL_COLUMNS = ("global_step", "eval/mean_return", "eval/std_return", "eval/min_return",
                "eval/max_return", "eval/mean_length", "eval/episodes")


class RunLogger:
    """Appends rows to the run's CSV files and mirrors them as TensorBoard scalars."""

    def __init__(self, run_dir: Path, hparams: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.writer = tf.summary.create_file_writer(str(run_dir / "tb"))
        self._files = {}
        self._writers = {}
        for name, columns in (("metrics.csv", METRIC_COLUMNS), ("evaluations.csv", EVAL_COLUMNS)):
            path = run_dir / name
            new = not path.exists() or path.stat().st_size == 0
            f = open(path, "a", newline="")
            writer = csv.DictWriter(f, fieldnames=columns)
            if new:
                writer.writeheader()
            self._files[name], self._writers[name] = f, writer
        table = "\n".join(f"|{k}|{v}|" for k, v in hparams.items())
        with self.writer.as_default():
            tf.summary.text("hyperparameters", f"|param|value|\n|-|-|\n{table}", step=0)

    def _write(self, name: str, row: dict[str, Any]) -> None:
        self._writers[name].writerow(row)
        self._files[name].flush()
        step = int(row["global_step"])
        with self.writer.as_default():
            for key, value in row.items():
                if key != "global_step" and value != "" and value is not None:
                    tf.summary.scalar(key, float(value), step=step)

    def log_metrics(self, row: dict[str, Any]) -> None:
        self._write("metrics.csv", row)

    def log_eval(self, row: dict[str, Any]) -> None:
        self._write("evaluations.csv", row)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
        for f in self._files.values():
            f.close()
