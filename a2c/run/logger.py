"""Run logging: metrics.csv, evaluations.csv and TensorBoard events, in one place.

Keys are namespaced like SB3/CleanRL (``rollout/``, ``train/``, ``time/``, ``eval/``)
and the same names are used for CSV columns and TensorBoard tags.

The TensorBoard events are written by TensorBoard's own Python writer, one event per
row holding all of its scalars as ``simple_value``s (what TensorBoard reads as scalars,
and what PyTorch's writer writes), not by ``tf.summary``: each eager
``tf.summary.scalar`` costs about half a millisecond of op dispatch, which made logging
a sixth of a fused run's time and a third of a 64-member population's.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.text.summary_v2 import text_pb
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from a2c.common.errors import RunDirError

METRIC_COLUMNS = (
    "global_step",
    "update",
    "rollout/ep_return_mean",
    "rollout/ep_length_mean",
    "rollout/episodes",
    "train/total_loss",
    "train/policy_loss",
    "train/value_loss",
    "train/entropy",
    "train/explained_variance",
    "train/grad_norm",
    "train/learning_rate",
    "time/steps_per_second",
    "time/elapsed_seconds",
)
EVAL_COLUMNS = (
    "global_step",
    "time/elapsed_seconds",
    "eval/mean_return",
    "eval/std_return",
    "eval/min_return",
    "eval/max_return",
    "eval/mean_length",
    "eval/episodes",
)
#: evaluations.csv columns of a sampled evaluation's greedy score, played beside it on the same seeds.
GREEDY_EVAL_COLUMNS = ("eval/greedy_mean_return", "eval/greedy_std_return")


class RunLogger:
    """Appends rows to the run's CSV files and mirrors them as TensorBoard scalars.

    ``hparams`` is written once as a TensorBoard text at step 0; a resumed run passes
    None (the run's first events file already has it).
    """

    def __init__(
        self,
        run_dir: Path,
        hparams: dict[str, Any] | None,
        extra_columns: tuple[str, ...] = (),
        eval_columns: tuple[str, ...] = EVAL_COLUMNS,
    ) -> None:
        """``extra_columns``: metrics.csv columns after [`METRIC_COLUMNS`][a2c.run.logger.METRIC_COLUMNS] (a trainer's
        own); ``eval_columns``: evaluations.csv's. A file that already has a header keeps it (a run resumed
        under other settings): values it has no column for still reach TensorBoard."""
        self.run_dir = run_dir
        self.writer = EventFileWriter(str(run_dir / "tb"))
        self._closed = False
        self._files = {}
        self._writers = {}
        for name, columns in (
            ("metrics.csv", METRIC_COLUMNS + tuple(extra_columns)),
            ("evaluations.csv", eval_columns),
        ):
            path = run_dir / name
            new = not path.exists() or path.stat().st_size == 0
            if not new and name == "evaluations.csv":
                with open(path, newline="") as existing:
                    columns = tuple(next(csv.reader(existing), columns))
            f = open(path, "a", newline="")
            lenient = name == "evaluations.csv"  # only there may a kept header lack a column
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore" if lenient else "raise")
            if new:
                writer.writeheader()
            self._files[name], self._writers[name] = f, writer
        if hparams is not None:
            table = "\n".join(f"|{k}|{v}|" for k, v in hparams.items())
            self._event(0, text_pb("hyperparameters", f"|param|value|\n|-|-|\n{table}"))

    def _write(self, name: str, row: dict[str, Any]) -> None:
        self._writers[name].writerow(row)
        self._files[name].flush()
        summary = summary_pb2.Summary()
        for key, value in row.items():
            if key != "global_step" and value != "" and value is not None:
                summary.value.add(tag=key, simple_value=float(value))
        self._event(int(row["global_step"]), summary)

    def _event(self, step: int, summary: summary_pb2.Summary) -> None:
        self.writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    def log_metrics(self, row: dict[str, Any]) -> None:
        self._write("metrics.csv", row)

    def log_eval(self, row: dict[str, Any]) -> None:
        self._write("evaluations.csv", row)

    def flush(self) -> None:
        """Push everything written so far to the files (TensorBoard buffers events)."""
        for f in self._files.values():
            f.flush()
        self.writer.flush()

    def file_sizes(self) -> dict[str, int]:
        """Byte size of every log file, by path relative to the run directory.

        Taken at each checkpoint so that a resume can cut the logs back to exactly that
        point ([`rewind_logs`][a2c.run.logger.rewind_logs]); sizes rather than steps, because the final
        evaluation shares its step with the last periodic one.
        """
        self.flush()
        paths = [self.run_dir / name for name in self._files] + log_event_files(self.run_dir)
        return {p.relative_to(self.run_dir).as_posix(): p.stat().st_size for p in paths}

    def close(self) -> None:
        """Flush and close every file; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self.writer.flush()
        self.writer.close()
        for f in self._files.values():
            f.close()


def log_event_files(run_dir: Path) -> list[Path]:
    """The run's TensorBoard event files, oldest session first."""
    return sorted((run_dir / "tb").glob("events.*"))


def rewind_logs(run_dir: Path, sizes: dict[str, int]) -> None:
    """Cut metrics.csv, evaluations.csv and the TensorBoard events back to ``sizes``.

    Rows written after the checkpoint (the steps a resumed run is about to redo) are
    dropped so that nothing is logged twice: each file is truncated to its recorded
    size (CSV rows and TFRecord events are appended whole and flushed before a
    checkpoint, so that is a record boundary), and event files created after the
    checkpoint, by a session that never reached another one, are deleted.
    """
    for rel, size in sizes.items():
        path = run_dir / rel
        actual = path.stat().st_size if path.is_file() else -1
        if actual < size:
            raise RunDirError(
                f"{path} is missing or shorter than at the checkpoint; the run's logs were "
                "changed, so it cannot be resumed"
            )
        if actual > size:
            os.truncate(path, size)
    for path in log_event_files(run_dir):
        if path.relative_to(run_dir).as_posix() not in sizes:
            path.unlink()
