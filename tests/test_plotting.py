"""``a2c plot`` and the results helpers: curve aggregation, PNGs, the markdown table."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from a2c.analysis.plotting import (
    EV_YLIM,
    EXPLAINED_VARIANCE,
    format_steps,
    plot_learning_curve,
    plot_learning_curves_by_env,
    plot_runs,
)  # noqa: E402
from a2c.analysis.run_data import aggregate_curves, aggregate_evaluations, load_run, results_table  # noqa: E402
from a2c.cli.main import main  # noqa: E402
from a2c.common.errors import RunDirError  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(shared_run_dir: Path) -> Path:
    return shared_run_dir


def fake_run(
    source: Path,
    dest: Path,
    *,
    seed: int,
    step_scale: float = 1.0,
    return_shift: float = 0.0,
    env_id: str | None = None,
) -> Path:
    """A copy of ``source`` with its steps scaled and returns shifted (another 'seed')."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("saved_model", "tb", "*.keras"))
    for name, value_cols in (("metrics.csv", ["rollout/ep_return_mean"]), ("evaluations.csv", ["eval/mean_return"])):
        with open(dest / name, newline="") as f:
            rows = list(csv.DictReader(f))
            fields = list(rows[0].keys())
        for row in rows:
            row["global_step"] = str(int(int(row["global_step"]) * step_scale))
            for col in value_cols:
                if row[col] != "":
                    row[col] = str(float(row[col]) + return_shift)
        with open(dest / name, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    summary = json.loads((dest / "summary.json").read_text())
    summary.update(seed=seed, eval_mean_return=summary["eval_mean_return"] + return_shift)
    if env_id:
        summary["env_id"] = env_id
        config = (dest / "config.toml").read_text().replace('env_id = "CartPole-v1"', f'env_id = "{env_id}"')
        (dest / "config.toml").write_text(config)
    (dest / "summary.json").write_text(json.dumps(summary))
    return dest


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 300 and im.height > 200


def test_aggregate_curves_interpolates_onto_a_common_grid():
    a = (np.array([0.0, 10.0]), np.array([0.0, 10.0]))
    b = (np.array([0.0, 5.0]), np.array([2.0, 2.0]))  # shorter run
    grid, mean, std, count = aggregate_curves([a, b], n_points=11)
    np.testing.assert_allclose(grid, np.arange(11.0))
    np.testing.assert_array_equal(count, [2] * 6 + [1] * 5)
    np.testing.assert_allclose(mean[:6], (np.arange(6.0) + 2) / 2)
    np.testing.assert_allclose(std[:6], np.abs(np.arange(6.0) - 2) / 2)
    np.testing.assert_allclose(mean[6:], np.arange(6.0, 11.0))  # only run a covers these steps
    np.testing.assert_allclose(std[6:], 0.0)


def test_aggregate_evaluations_across_runs(run_dir, tmp_path):
    other = fake_run(run_dir, tmp_path / "r1", seed=1, return_shift=4.0)
    steps, means, errs = aggregate_evaluations([load_run(run_dir), load_run(other)])
    base = load_run(run_dir).evaluations
    np.testing.assert_array_equal(steps, np.unique(base["global_step"]))
    # evaluations.csv has two rows at the last step (periodic + final); both count
    assert np.all(np.isfinite(means)) and np.all(errs >= 0)


def test_plot_one_run(run_dir, tmp_path, capsys):
    out = tmp_path / "one.png"
    assert main(["plot", str(run_dir), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert_png(out)
    # default output: inside the run directory
    run = tmp_path / "copy"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("saved_model", "tb"))
    assert main(["plot", str(run)]) == 0
    assert_png(run / "learning_curves.png")


def test_plot_several_runs_and_envs(run_dir, tmp_path):
    runs = [
        run_dir,
        fake_run(run_dir, tmp_path / "s1", seed=1, step_scale=1.3, return_shift=5.0),
        fake_run(run_dir, tmp_path / "s2", seed=2, step_scale=0.8, return_shift=-3.0),
        fake_run(run_dir, tmp_path / "acro", seed=0, return_shift=-100.0, env_id="Acrobot-v1"),
    ]
    fig = plot_runs(runs[:3], tmp_path / "three.png", title="three seeds")
    assert_png(tmp_path / "three.png")
    assert fig.get_suptitle() == "three seeds"
    assert len(fig.axes) == 6
    plot_runs(runs, tmp_path / "mixed.png")
    assert_png(tmp_path / "mixed.png")
    paths = plot_learning_curves_by_env(runs, tmp_path / "curves")
    assert set(paths) == {"CartPole-v1", "Acrobot-v1"}
    for path in paths.values():
        assert_png(path)
    assert sorted(p.name for p in (tmp_path / "curves").iterdir()) == [
        "learning_curve_Acrobot-v1.png",
        "learning_curve_CartPole-v1.png",
    ]


@pytest.mark.parametrize(
    "steps, text",
    [
        (0, "0"),
        (999, "999"),
        (1000, "1k"),
        (12_500, "12.5k"),
        (50_000, "50k"),
        (125_000, "125k"),
        (999_999, "1M"),
        (1_500_000, "1.5M"),
        (2_000_000, "2M"),
        (1_250_000, "1.25M"),
        (3e9, "3G"),
        (-50_000, "-50k"),
    ],
)
def test_format_steps(steps, text):
    assert format_steps(steps) == text
    assert format_steps(steps, 3) == text  # as a FuncFormatter calls it


def step_formatters(fig) -> list:
    return [ax.xaxis.get_major_formatter() for ax in fig.axes]


def test_step_axes_use_short_labels(run_dir, tmp_path):
    other = fake_run(run_dir, tmp_path / "big", seed=1, step_scale=40.0, env_id="Acrobot-v1")
    for fig in (plot_runs([run_dir, other]), plot_learning_curve([run_dir, other])):
        assert fig.axes and all(ax.get_xlabel() == "environment steps" for ax in fig.axes)
        for ax in fig.axes:
            assert getattr(ax.xaxis.get_major_formatter(), "func", None) is format_steps, ax.get_title()
            fig.canvas.draw()
            labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
            assert 2 <= len(labels) <= 6 and all(len(label) <= 5 for label in labels), labels
            # no two tick labels overlap at the default size
            boxes = sorted((t.get_window_extent() for t in ax.get_xticklabels() if t.get_text()), key=lambda b: b.x0)
            assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:])), labels


def with_explained_variance(source: Path, dest: Path, values: list[float]) -> Path:
    """A copy of ``source`` whose explained-variance column cycles through ``values``."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("saved_model", "tb", "*.keras"))
    with open(dest / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    filled = [row for row in rows if row[EXPLAINED_VARIANCE] != ""]
    assert len(filled) >= len(values)
    for i, row in enumerate(filled):
        row[EXPLAINED_VARIANCE] = str(values[i % len(values)])
    with open(dest / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    return dest


def clip_notes(fig) -> tuple[list[str], tuple[float, float]]:
    ax = next(ax for ax in fig.axes if ax.get_title() == "explained variance")
    return [t.get_text() for t in ax.texts if "clipped" in t.get_text()], ax.get_ylim()


def test_explained_variance_clipped_with_a_note(run_dir, tmp_path):
    fine = with_explained_variance(run_dir, tmp_path / "fine", [0.5, -1.0, 0.9])
    notes, ylim = clip_notes(plot_runs([fine]))
    assert notes == [] and ylim[0] < -1.0  # -1 itself is in range: nothing clipped, autoscaled
    low = with_explained_variance(run_dir, tmp_path / "low", [0.5, 0.9, -20.0])
    notes, ylim = clip_notes(plot_runs([low]))
    assert ylim == EV_YLIM
    assert len(notes) == 1 and "below -1 clipped" in notes[0] and "min -20" in notes[0]
    # one run below the range is enough, whichever group it is in
    other_env = with_explained_variance(run_dir, tmp_path / "acro", [0.1, -3.5])
    other_env = fake_run(other_env, tmp_path / "acro2", seed=0, env_id="Acrobot-v1")
    notes, ylim = clip_notes(plot_runs([fine, other_env]))
    assert ylim == EV_YLIM and len(notes) == 1 and "min -3.5" in notes[0]


def test_results_table_groups_by_env(run_dir, tmp_path):
    runs = [
        run_dir,
        fake_run(run_dir, tmp_path / "s1", seed=1, return_shift=2.0),
        fake_run(run_dir, tmp_path / "acro", seed=0, return_shift=-100.0, env_id="Acrobot-v1"),
    ]
    table = results_table(runs, per_run=True)
    lines = table.splitlines()
    assert lines[0].startswith("| Environment | Runs | Seeds |")
    cartpole = next(line for line in lines if line.startswith("| CartPole-v1 | 2 | 0, 1 |"))
    base = json.loads((run_dir / "summary.json").read_text())["eval_mean_return"]
    assert f"{base + 1.0:.1f} ± 1.0" in cartpole  # mean and std across the two runs
    assert f"{base:.1f} / {base + 2.0:.1f}" in cartpole  # worst / best run
    assert any(line.startswith("| Acrobot-v1 | 1 | 0 |") for line in lines)
    assert sum(line.startswith("| acro |") or line.startswith("| s1 |") for line in lines) == 2  # per-run rows


def test_results_table_says_which_weights_a_run_reports(run_dir, tmp_path):
    kept = fake_run(run_dir, tmp_path / "kept", seed=1)
    summary = json.loads((kept / "summary.json").read_text())
    summary.update(model_step=40_000, selection_mean_return=480.0, last_model_eval_mean_return=123.4)
    (kept / "summary.json").write_text(json.dumps(summary))
    lines = results_table([run_dir, kept], per_run=True).splitlines()
    header = lines[0].split(" | ")
    cartpole = next(line for line in lines if line.startswith("| CartPole-v1 | 2 |")).split(" | ")
    base = json.loads((run_dir / "summary.json").read_text())["eval_mean_return"]
    # the last weights: the kept run's own score for them, the other run's eval (they are its model)
    assert cartpole[header.index("Last weights")] == f"{(base + 123.4) / 2:.1f} ± {abs(base - 123.4) / 2:.1f}"
    assert "| best periodic eval, step 40,000 (last weights 123.4) |" in next(
        r for r in lines if r.startswith("| kept |")
    )
    assert "| last weights |" in next(r for r in lines if r.startswith(f"| {run_dir.name} |"))
    alone = results_table([run_dir]).splitlines()
    assert alone[2].split(" | ")[header.index("Last weights")] == "-"


def test_plot_and_table_errors(run_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for args, message in (
        ([str(tmp_path / "missing")], "run directory not found"),
        ([str(tmp_path / "empty")], "has no metrics.csv"),
        ([str(run_dir), "--out", str(tmp_path / "curves.jpg")], ".png"),
    ):
        assert main(["plot", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run_dir, unfinished, ignore=shutil.ignore_patterns("saved_model", "tb", "summary.json"))
    with pytest.raises(RunDirError, match="no summary.json"):
        results_table([unfinished])
    with pytest.raises(RunDirError, match="no run directories"):
        results_table([])
