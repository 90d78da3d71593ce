"""The results command runs end to end (with a tiny budget instead of the presets')."""

from results import main


def test_results_command_writes_table_curves_model_and_gif(tmp_path):
    out, runs = tmp_path / "results", tmp_path / "runs"
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold table\n<!-- results:end -->\noutro\n")
    assert (
        main(
            [
                "--out",
                str(out),
                "--runs",
                str(runs),
                "--envs",
                "CartPole-v1",
                "--seeds",
                "0,1",
                "--total-steps",
                "400",
                "--jobs",
                "2",
                "--readme",
                str(readme),
            ]
        )
        == 0
    )
    new = readme.read_text()
    assert "old table" not in new and "| CartPole-v1 | 2 |" in new
    assert new.startswith("intro\n") and new.endswith("outro\n") and ".png)" in new
    text = (out / "results.md").read_text()
    assert "| CartPole-v1 | 2 |" in text and "Stable-Baselines3" in text
    assert (out / "cartpole_model" / "model.keras").is_file()
    assert (out / "cartpole_model" / "saved_model" / "saved_model.pb").is_file()
    assert (out / "cartpole.gif").read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    assert list(out.glob("*.png"))
    # A second call reuses the finished runs instead of training again.
    mtime = (runs / "CartPole-v1__s0" / "summary.json").stat().st_mtime
    assert (
        main(
            ["--out", str(out), "--runs", str(runs), "--envs", "CartPole-v1", "--seeds", "0,1", "--total-steps", "400"]
        )
        == 0
    )
    assert (runs / "CartPole-v1__s0" / "summary.json").stat().st_mtime == mtime


def test_the_continuous_set_has_its_own_readme_block(tmp_path):
    from results import update_readme

    readme = tmp_path / "README.md"
    readme.write_text(
        "a\n<!-- results:start -->\nkeep\n<!-- results:end -->\n"
        "b\n<!-- results-continuous:start -->\nold\n<!-- results-continuous:end -->\nc\n"
    )
    update_readme(
        readme,
        "| Pendulum-v1 | 3 |",
        "| Pendulum-v1 | ref |",
        "continuous/learning_curve_Pendulum-v1.png",
        "python scripts/results.py --set continuous",
        "results-continuous",
    )
    text = readme.read_text()
    assert "keep" in text and "old" not in text and "| Pendulum-v1 | 3 |" in text
    assert "![Pendulum-v1 learning curves](continuous/learning_curve_Pendulum-v1.png)" in text
