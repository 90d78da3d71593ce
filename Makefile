# Everything installs into .venv from pyproject.toml; only python3 (>= 3.11; tomllib) and make are needed.
# The versions come from constraints.txt, the lock file: what the test suite last passed on (make lock).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
# make setup CONSTRAINTS= installs the newest versions pyproject.toml allows instead of the locked ones.
CONSTRAINTS ?= constraints.txt
PIN    := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
LOCK_VENV := .venv-lock

.PHONY: setup lock train test check lint typecheck imports docs docs-serve test-slow bench bench-fused bench-jax bench-ray bench-population sweep-presets bench-robustness results results-continuous bench-pendulum bench-atari results-atari results-recurrent notebook clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(PIN) --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIN) -e '.[dev]'
	touch $@

## Refresh constraints.txt: the newest versions pyproject.toml allows, resolved in a scratch venv (Linux
## x86_64, Python 3.11, as CI). Then run make test (setup reinstalls from the new lock) and commit it if green.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet -e '.[dev]'
	PLATFORM=$$($(LOCK_VENV)/bin/python -c 'import platform as p; print(p.system(), p.machine(), "Python", p.python_version())'); \
	{ echo "# The versions 'make setup' installs (pip install -c constraints.txt -e '.[dev]'): what the test"; \
	  echo "# suite passed on. Written by 'make lock' on $$PLATFORM."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable | grep -v -i -e '^a2c==' -e '^setuptools==' -e '^wheel==' -e '^#'; } > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt
	rm -rf $(LOCK_VENV)

## Train the default CartPole-v1 agent into runs/
train: setup
	$(BIN)/a2c train --env CartPole-v1

## Everything CI checks: the contracts (lint, types, layers), the docs site, then the default test suite
test: check
	$(BIN)/python -m pytest

## The contracts without the tests: ruff (lint, import order, format), mypy, import-linter, the docs build
check: lint typecheck imports docs

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

## The layers (each imports only from those below) and the TensorFlow-free modules (pyproject: importlinter)
imports: setup
	$(BIN)/lint-imports

## The documentation site, built offline in strict mode into site/ (make docs-serve to browse it)
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

docs-serve: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

## Long end-to-end tests (full CartPole solve, ...)
test-slow: setup
	$(BIN)/python -m pytest -m slow

## Speed benchmark against Stable-Baselines3 (installs the 'bench' extra: torch CPU + SB3)
## ... and time to a first and a stable greedy-100 solve, each at its own settings, 5 seeds paired
bench: setup
	$(BIN)/python -m pip install --quiet $(PIN) -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_cartpole.py --out results/benchmark_cartpole.json
	$(BIN)/python benchmarks/bench_fused.py --seeds 5 --skip scaling,acrobot --impls sb3,standard,fused_graph \
		--out results/solve_benchmark.json

## Recurrent (LSTM) vs feed-forward A2C on the velocity-free CartPoleNoVel-v1 (3 seeds each) and an LSTM on
## PendulumNoVel-v1: results/recurrent.{json,md,png} (~30 min on 2 cores, one run at a time)
results-recurrent: setup
	$(BIN)/python benchmarks/bench_recurrent.py --jobs 1 --out results/recurrent.json

## 64 CartPole seeds trained as one population vs SB3 on one seed; wall time against population size 1..256 (~10 min)
bench-population: setup
	$(BIN)/python -m pip install --quiet $(PIN) -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_population.py --out results/population_benchmark.json

## The standard presets' sweeps: tuning seeds, then fresh check seeds; every candidate kept in results/ (~1.5 h)
sweep-presets: setup
	$(BIN)/python benchmarks/sweep_presets.py --env CartPole-v1 --seeds 10-15 --out results/preset_sweep_cartpole.json
	$(BIN)/python benchmarks/sweep_presets.py --env CartPole-v1 --seeds 20-27 --candidates preset,normrew_lr2e-3 --jobs 1 \
		--out results/preset_sweep_cartpole_check.json
	$(BIN)/python benchmarks/sweep_presets.py --env Acrobot-v1 --seeds 10-13 --out results/preset_sweep_acrobot.json
	$(BIN)/python benchmarks/sweep_presets.py --env Acrobot-v1 --seeds 20-25 --eval-every 10000 \
		--candidates preset,normrew,rs0.1_lr2e-3_linear --out results/preset_sweep_acrobot_check.json
	$(BIN)/python benchmarks/sweep_presets.py --env LunarLander-v3 --seeds 10-13 \
		--candidates preset,normrew,16envs,lr2e-3,normrew_16envs_lr2e-3 --out results/preset_sweep_lunarlander.json

## Robustness of the presets on unseen seeds (from 100000): solved at the end, collapses after a solve, time to a
## stable solve. Standard presets in 2 processes (CartPole 64 seeds, the others 32), each fused preset as one
## 64-seed population; finished runs are cached in runs/robustness, so a rerun resumes. Writes
## results/robustness_*.{json,md,png} and the table in docs/robustness.md
ROBUST := $(BIN)/python benchmarks/bench_robustness.py --docs docs/robustness.md
bench-robustness: setup
	$(ROBUST) --env CartPole-v1
	$(ROBUST) --env Acrobot-v1
	$(ROBUST) --env MountainCarContinuous-v0
	$(ROBUST) --env Pendulum-v1
	$(ROBUST) --env LunarLander-v3

## Fused trainer (graph executor and XLA) against the standard trainer and SB3, env scaling, Acrobot (~25 min)
bench-fused: setup
	$(BIN)/python -m pip install --quiet $(PIN) -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_fused.py --out results/fused_benchmark.json

## Fused mode (XLA, graph executor; single agent at 8/64/256 envs x 3M steps, populations of 64 and 256
## seeds x 200k) against a PureJaxRL-style JAX A2C with the same hyperparameters, 3 rounds alternated
## (installs the 'jax' extra; ~30 min)
bench-jax: setup
	$(BIN)/python -m pip install --quiet $(PIN) -e '.[dev,jax]'
	$(BIN)/python benchmarks/bench_jax.py --rounds 3 --out results/jax_benchmark.json

## Ray workers: env steps/s against worker count (1, 2, 4 local actors; A3C; 2 simulated nodes) on
## LunarLander-v3 beside the single-process trainer and SB3 (DummyVecEnv, SubprocVecEnv) (~6 min)
bench-ray: setup
	$(BIN)/python -m pip install --quiet $(PIN) -e '.[dev,bench]'
	nice -n 10 $(BIN)/python benchmarks/bench_ray.py --out results/ray_benchmark.json

## Time to Pendulum-v1 >= -200: the fused preset beside SB3 A2C with the zoo's settings (gSDE), seeds 0-2
bench-pendulum: setup
	$(BIN)/python -m pip install --quiet $(PIN) -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_pendulum.py --seeds 0,1,2 --out results/continuous/pendulum_benchmark.json

## Re-execute notebooks/walkthrough.ipynb in place with its full parameters (trains CartPole: a few minutes)
notebook: setup
	$(BIN)/python notebooks/execute.py notebooks/walkthrough.ipynb

clean:
	rm -rf $(VENV) $(LOCK_VENV) runs .pytest_cache

## Regenerate results/: 3 seeds x CartPole-v1, Acrobot-v1, LunarLander-v3, curves, table, GIF, model
results: setup
	$(BIN)/python scripts/results.py --out results --runs runs/results --readme docs/results.md

## Regenerate results/continuous/: 3 seeds x Pendulum-v1, MountainCarContinuous-v0, LunarLanderContinuous-v3,
## BipedalWalker-v3 (Box actions; ~35 min on 2 cores, measured 2026-12-01), curves, table
results-continuous: setup
	$(BIN)/python scripts/results.py --set continuous --out results/continuous --runs runs/results --readme docs/results.md

## Atari speed: our standard trainer as the Atari settings train (bfloat16; also float32, and on gymnasium's
## wrappers) vs SB3 A2C CnnPolicy (DummyVecEnv on 1 and 2 torch threads, SubprocVecEnv) on ALE/Pong-v5,
## 16 envs, profile split (~8 min)
bench-atari: setup
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,atari]'
	nice -n 10 $(BIN)/python benchmarks/bench_atari.py --steps 2400 --rounds 3 --out results/atari_benchmark.json

## Atari learning: Seaquest and SpaceInvaders 1M steps x 2 seeds (float32), Seaquest again in bfloat16 on the
## same seeds, Breakout 5M, then Pong with what is left;
## 180 min of training per invocation, resuming the same runs in runs/atari each time; writes results/atari/
## (sampled final evaluations beside random play on the same seeds) and the block in docs/atari.md
results-atari: setup
	$(BIN)/python -m pip install --quiet $(PIN) -e '.[dev,atari]'
	nice -n 10 $(BIN)/python scripts/atari_results.py --out results/atari --runs runs/atari --minutes 180 --readme docs/atari.md
