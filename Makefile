# Self-documenting: every target with a "## " comment is listed by `make help`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.DEFAULT_GOAL := help
.PHONY: help setup test test-full test-trained world world-quick world-docs run sweep bench ui exp-ga-vs-de exp-generators exp-baselines exp-unseen-prompts

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

exp-ga-vs-de: ## thesis GA vs DE: one prompt x 50 seeds, then figures/ga_vs_de.png
	PY=$(PY) experiments/run.sh ga_vs_de

exp-generators: ## thesis generator comparison on the (offline) thesis prompts
	PY=$(PY) experiments/run.sh generators

exp-baselines: ## GA and DE variants against CMA-ES and random search
	PY=$(PY) experiments/run.sh baselines

exp-unseen-prompts: ## GA on prompts never captioned in mini-CLIP training: truth_match per prompt
	PY=$(PY) experiments/run.sh unseen_prompts
