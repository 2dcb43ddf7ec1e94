# Self-documenting: every target with a "## " comment is listed by `make help`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# figures-quick keeps its own tracking store (and Hydra job folders, history cache) and output
QUICK_STORE ?= .cache/figures-quick
QUICK_OUT ?= figures-quick
# mlflow-server: where it listens (MLFLOW_HOST=0.0.0.0 for other machines, with
# MLFLOW_ALLOWED_HOSTS=<name>:<port> for MLflow's host check) and where it keeps runs and artifacts
MLFLOW_HOST ?= 127.0.0.1
MLFLOW_PORT ?= 5000
MLFLOW_ALLOWED_HOSTS ?=
MLFLOW_SERVER_DIR ?= mlflow-server

.DEFAULT_GOAL := help
.PHONY: help setup test test-full test-trained world world-quick world-docs run sweep bench ui mlflow-server figures figures-only figures-quick exp-ga-vs-de exp-generators exp-baselines exp-unseen-prompts

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

setup: ## create $(VENV) and install the package with its pinned dependencies
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e '.[dev]'

test: ## fast test suite (everything but `slow`), a few minutes
	$(PY) -m pytest

test-full: ## every test, slow ones included
	$(PY) -m pytest -m ''

test-trained: ## the tests that judge results with the trained shapes-world models
	$(PY) -m pytest -m trained_weights

world: ## retrain the shapes-world models (mini-CLIP, classifier, DCGAN) into src/latentevo/assets/world
	$(PY) -m latentevo.training.world --jobs 2

world-quick: ## a quick, low-quality build of the shapes-world models
	$(PY) -m latentevo.training.world --quick

world-docs: ## pictures of the shapes world for docs/ (renders with captions, generator samples)
	$(PY) -m latentevo.training.gallery --out docs

run: ## one run with the defaults (GA, shapes world, "a red circle")
	$(PY) run.py

sweep: ## the main job: GA and DE x 50 seeds, in parallel jobs
	$(PY) run.py -m algo=ga,de "seed=range(50)"

bench: ## speed of one run (pop 16 x 200 generations) and the loop's overhead
	$(PY) benchmarks/pipeline_speed.py --cli

ui: ## MLflow UI on the project's tracking store, http://127.0.0.1:5000
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db

mlflow-server: ## shared MLflow tracking server (SQLite, artifacts on disk in mlflow-server/), http://127.0.0.1:5000
	mkdir -p $(MLFLOW_SERVER_DIR)
	$(VENV)/bin/mlflow server --host $(MLFLOW_HOST) --port $(MLFLOW_PORT) \
		--backend-store-uri sqlite:///$(abspath $(MLFLOW_SERVER_DIR))/mlflow.db \
		--artifacts-destination $(abspath $(MLFLOW_SERVER_DIR))/artifacts \
		$(if $(MLFLOW_ALLOWED_HOSTS),--allowed-hosts $(MLFLOW_ALLOWED_HOSTS))

figures: ## thesis ch. 4 figures: runs the sweeps missing from the store, then figures/ (PNG, PDF, tables, index.md)
	$(PY) -m analysis.make_figures --run-missing --out figures

figures-only: ## the same figures and tables from the runs already in the store, running nothing
	$(PY) -m analysis.make_figures --out figures

figures-quick: ## every figure from a few seeds x 12 generations, own store $(QUICK_STORE), into $(QUICK_OUT)/ (minutes on a CPU)
	mkdir -p $(QUICK_STORE)
	MLFLOW_TRACKING_URI=sqlite:///$(abspath $(QUICK_STORE))/mlflow.db $(PY) -m analysis.make_figures --quick --run-missing \
		--out $(QUICK_OUT) --cache-dir $(QUICK_STORE)/cache --sweep-dir $(QUICK_STORE)/multirun

exp-ga-vs-de: ## thesis GA vs DE: one prompt x 50 seeds, then figures/ga_vs_de/
	PY=$(PY) experiments/run.sh ga_vs_de

exp-generators: ## thesis generator comparison on the (offline) thesis prompts
	PY=$(PY) experiments/run.sh generators

exp-baselines: ## GA and DE variants against CMA-ES and random search
	PY=$(PY) experiments/run.sh baselines

exp-unseen-prompts: ## GA on prompts never captioned in mini-CLIP training: truth_match per prompt
	PY=$(PY) experiments/run.sh unseen_prompts
