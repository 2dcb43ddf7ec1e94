# Self-documenting: every target with a "## " comment is listed by `make help`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Where runs, checkpoints, weights and Hydra's folders go is a conf/paths/ option (paths=<name>):
# figures-quick, eval-quick and the GAN comparisons keep their own (.cache/<name>/). TRACKING_STORE: a
# tracking store (an MLflow URI or a directory) instead of the option's, for every target below
TRACKING_STORE ?=
store_arg = $(if $(TRACKING_STORE),--store '$(TRACKING_STORE)')
store_override = $(if $(TRACKING_STORE),"paths.store='$(TRACKING_STORE)'")
QUICK_OUT ?= figures-quick
EVAL_QUICK_OUT ?= figures-quick/eval
# mlflow-server: where it listens (MLFLOW_HOST=0.0.0.0 for other machines, with
# MLFLOW_ALLOWED_HOSTS=<name>:<port> for MLflow's host check), where it keeps runs and artifacts,
# and its store: BACKEND=sqlite (one person) or postgresql (a team, a cluster: a local
# PostgreSQL in $(MLFLOW_SERVER_DIR)/postgres on PG_PORT, started by cluster/postgres.sh)
MLFLOW_HOST ?= 127.0.0.1
MLFLOW_PORT ?= 5000
MLFLOW_ALLOWED_HOSTS ?=
MLFLOW_SERVER_DIR ?= mlflow-server
MLFLOW_WORKERS ?= 2
BACKEND ?= sqlite
PG_PORT ?= 5433
# database connections per server worker, and as many more at peaks: each worker serves up to 40
# requests at once, and MLflow's default pool (5 + 10) made 32 runs logging at once fail, with
# either store ("QueuePool limit ... reached"); cluster/postgres.sh allows 200 connections
MLFLOW_DB_POOL ?= 20

.DEFAULT_GOAL := help
.PHONY: help setup lint test test-process test-browser ui-screenshots test-full test-trained world world-quick world-docs world-clip world-classifier world-dcgan world-critic
.PHONY: world-quick-clip world-quick-classifier world-quick-dcgan run sweep bench bench-sweep ui mlflow-server figures figures-only figures-quick exp-ga-vs-de exp-generators exp-baselines exp-unseen-prompts exp-nsga2-realness exp-evolution-vs-gradient exp-penalties exp-image-prompts exp-augclip figures-thesis bench-real
.PHONY: eval eval-only eval-quick eval-imagenet eval-cifar10 cifar10-classifier
.PHONY: postgres-down slurm-up slurm-down test-cluster bench-tracking
.PHONY: egan egan-quick facegen facegen-quick gan-egan gan-dcgan gan-facegen

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

setup: ## create $(VENV) and install the package with its pinned dependencies
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e '.[dev]'

lint: ## ruff: the project's rules and line length (pyproject.toml)
	$(PY) -m ruff check .

test: ## the fast test suite (in-process: everything but the process, slow, cluster and browser tests), a few minutes
	$(PY) -m pytest

test-process: ## the tests that start real processes: signals, kill -9, exit statuses, make world-quick (a few minutes)
	$(PY) -m pytest -m 'process and not slow'

test-full: ## every test but the cluster's and the browser's, process and slow ones included
	$(PY) -m pytest -m 'not cluster and not browser'

test-cluster: ## sweeps through a real one-node Slurm and a PostgreSQL-backed MLflow server, and their faults (root; starts them)
	$(PY) -m pytest -m cluster -n 0

test-trained: ## the tests that judge results with the trained shapes-world models
	$(PY) -m pytest -m trained_weights

# The shapes-world models (docs/world.md): train.py runs of the committed recipes in conf/gan/world/
# (experiment shapes-world), float16 safetensors into the directory with its sha256 manifest. The
# mini-CLIP trains beside the classifier and then the DCGAN, which the classifier judges, one CPU
# thread each; the DCGAN's recipe is the GPU one when PyTorch sees a GPU (WORLD_DCGAN=dcgan_cpu or
# dcgan_gpu chooses). A FINISHED run of the same config whose weights are there is not run again.
WORLD_DIR ?= src/latentevo/assets/world
WORLD_QUICK_DIR ?= .cache/world-quick
# Hydra's folder of each training job (its log and composed config)
WORLD_RUNS ?= .cache/world-runs
WORLD_DCGAN ?= $(shell $(PY) -c 'import torch; print("dcgan_gpu" if torch.cuda.is_available() else "dcgan_cpu")')
world_train = $(PY) train.py world=$(2) world_dir=$(1) 'hydra.run.dir=$(WORLD_RUNS)/$(notdir $(1))/$(2)'
WORLD_QUICK_ARGS ?= eval_samples=200 final_samples=200
WORLD_QUICK_clip ?= model.iterations=9 model.image_pretrain_steps=3 model.batch_size=16 model.warmup=2
WORLD_QUICK_classifier ?= model.iterations=6 model.batch_size=16
WORLD_QUICK_dcgan ?= model.iterations=6 model.batch_size=16

world: ## retrain the shapes-world models (mini-CLIP, classifier, DCGAN) into src/latentevo/assets/world (~50 min on 2 cores)
	$(MAKE) -j2 world-clip world-dcgan

world-clip world-classifier world-critic:
	$(call world_train,$(WORLD_DIR),$(@:world-%=%))

world-dcgan: world-classifier
	$(call world_train,$(WORLD_DIR),$(WORLD_DCGAN))

world-quick: ## a quick, low-quality build of the shapes-world models into $(WORLD_QUICK_DIR) (about a minute)
	$(MAKE) -j2 world-quick-clip world-quick-dcgan

world-quick-clip world-quick-classifier world-quick-dcgan: world-quick-%:
	$(call world_train,$(WORLD_QUICK_DIR),$(if $(filter dcgan,$*),dcgan_cpu,$*)) run_name=$*-quick \
		$(WORLD_QUICK_ARGS) $(WORLD_QUICK_$*)

world-quick-dcgan: world-quick-classifier

world-docs: ## pictures of the shapes world for docs/ (renders with captions, generator samples)
	$(PY) -m latentevo.training.gallery --out docs

run: ## one run with the defaults (GA, shapes world, "a red circle")
	$(PY) run.py

sweep: ## the main job: GA and DE x 50 seeds, packed
	$(PY) run.py -m algo=ga,de "seed=range(50)"

bench: ## speed of one run (pop 16 x 200 generations) and the loop's overhead
	$(PY) benchmarks/pipeline_speed.py --cli

bench-sweep: ## the main job packed vs one job per process vs the bare-forward floor (~20 min on 2 cores)
	$(PY) benchmarks/packed_sweep.py

bench-tracking: ## metric points/s a tracking server takes from 32 runs logging at once, SQLite vs PostgreSQL store (~4 min)
	$(PY) benchmarks/tracking_load.py

ui: ## MLflow UI on the project's tracking store, http://127.0.0.1:5000
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db

ui-screenshots: ## screenshots of the MLflow UI (runs table, best_cos_sim chart, best image slider) on 3 short runs, by headless Chromium, into figures/ui/
	$(PY) scripts/ui_screenshots.py --out figures/ui

test-browser: ## the MLflow UI checked in headless Chromium (Debian: apt-get install chromium)
	$(PY) -m pytest -m browser -n 0

mlflow-server: ## shared MLflow tracking server, artifacts served from mlflow-server/, http://127.0.0.1:5000 (BACKEND=sqlite|postgresql)
	mkdir -p $(MLFLOW_SERVER_DIR)
	@case "$(BACKEND)" in \
		sqlite) store=sqlite:///$(abspath $(MLFLOW_SERVER_DIR))/mlflow.db ;; \
		postgresql) store=$$(cluster/postgres.sh up $(abspath $(MLFLOW_SERVER_DIR))/postgres $(PG_PORT)) || exit 1 ;; \
		*) echo "error: BACKEND must be sqlite or postgresql, got '$(BACKEND)'" >&2; exit 1 ;; \
	esac; \
	MLFLOW_SQLALCHEMYSTORE_POOL_SIZE=$(MLFLOW_DB_POOL) MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW=$(MLFLOW_DB_POOL) \
	exec $(VENV)/bin/mlflow server --host $(MLFLOW_HOST) --port $(MLFLOW_PORT) --workers $(MLFLOW_WORKERS) \
		--backend-store-uri "$$store" --artifacts-destination $(abspath $(MLFLOW_SERVER_DIR))/artifacts \
		$(if $(MLFLOW_ALLOWED_HOSTS),--allowed-hosts $(MLFLOW_ALLOWED_HOSTS))

postgres-down: ## stop the PostgreSQL of `make mlflow-server BACKEND=postgresql` (its data kept)
	cluster/postgres.sh down $(abspath $(MLFLOW_SERVER_DIR))/postgres $(PG_PORT)

slurm-up: ## a one-node Slurm cluster on this machine (root; Debian's slurm-wlm, munge, slurmdbd, mariadb-server), state in .cache/slurm
	cluster/slurm.sh up

slurm-down: ## stop the local Slurm cluster's daemons (its state kept)
	cluster/slurm.sh down

figures: ## thesis ch. 4 figures: runs the sweeps missing from the store, then figures/ (PNG, PDF, tables, index.md)
	$(PY) -m analysis figures --run-missing $(store_arg) --out figures

figures-only: ## the same figures and tables from the runs already in the store, running nothing
	$(PY) -m analysis figures $(store_arg) --out figures

figures-quick: ## every figure from a few seeds x 12 generations, own store (paths=quick), into $(QUICK_OUT)/ (minutes on a CPU)
	$(PY) -m analysis figures --quick --run-missing --paths quick $(store_arg) --out $(QUICK_OUT)

figures-thesis: ## thesis figs 4.4-4.13 on the real models (StyleGAN2, BigGAN-deep, OpenAI CLIP; weights and a GPU needed): runs missing jobs, then figures/thesis/
	$(PY) -m analysis figures --run-missing $(store_arg) --out figures/thesis \
		--experiments thesis_ga_vs_de thesis_church thesis_ginger_boy thesis_clown_cyclist

bench-real: ## images/s of BigGAN-deep-256 + ViT-B/32 at pop 16/64/256 (random init; on the GPU if there is one)
	$(PY) benchmarks/real_models_speed.py --out benchmarks/results/real_models_speed.json

exp-ga-vs-de: ## thesis GA vs DE: one prompt x 50 seeds, then figures/ga_vs_de/
	PY=$(PY) experiments/run.sh ga_vs_de

exp-generators: ## thesis generator comparison on the (offline) thesis prompts
	PY=$(PY) experiments/run.sh generators

exp-baselines: ## GA and DE variants against CMA-ES and random search
	PY=$(PY) experiments/run.sh baselines

exp-unseen-prompts: ## GA on prompts never captioned in mini-CLIP training: truth_match per prompt
	PY=$(PY) experiments/run.sh unseen_prompts

exp-nsga2-realness: ## NSGA-II on (cos_sim, realness) vs GA on the DCGAN, 10 seeds x 2 shapes, then figures/nsga2_realness/
	PY=$(PY) experiments/run.sh nsga2_realness

# one job at a time, so that each run's metric timestamps time its own compute
exp-evolution-vs-gradient: ## GA, DE, CMA-ES against Adam on the DCGAN: cos_sim and classifier accuracy vs n_evals and wall time
	PY=$(PY) experiments/run.sh evolution_vs_gradient hydra/launcher=local

exp-penalties: ## prompt algebra: does "-a <c> background" lower colour_leak and raise truth_match?
	PY=$(PY) experiments/run.sh penalties

exp-image-prompts: ## a scene as caption, rendered image or both: truth_match against the scene
	PY=$(PY) experiments/run.sh image_prompts

# one job at a time, the two arms alternating, so that each run's timestamps time its own compute
exp-augclip: ## AugCLIP: augment=crops vs none on held-out prompts, truth_match, the classifier, wall time per evaluation
	PY=$(PY) experiments/run.sh augclip hydra/launcher=local

# E-GAN and FaceGen (docs/gan.md): train.py and pixel_ga.py runs in their own store, trained
# networks in its weights/ (paths=gan: .cache/gan; the quick targets paths=gan_quick). A FINISHED
# run of the same config is reused, so facegen reuses egan's DCGAN and a second `make` only redraws.
GAN_PATHS ?= gan
GAN_QUICK_PATHS ?= gan_quick
# the seed of every train.py and pixel_ga.py run (make -j2 egan GAN_SEED=1 adds a seed)
GAN_SEED ?= 0
gan_train = $(PY) train.py paths=$(1) seed=$(GAN_SEED) $(store_override)
gan_pixel = $(PY) pixel_ga.py paths=$(1) seed=$(GAN_SEED) $(store_override)
gan_analysis = $(PY) -m analysis $(1) --paths $(2) $(store_arg) --out $(3)
# budgets (iterations, generations), from measured CPU costs per step (docs/gan.md): E-GAN and
# the DCGAN about 27 min each on one core, facegen's other models about 18 min; with -j2 the
# gan-* targets run side by side (make -j2 egan facegen: about 45 min)
EGAN_ARGS ?= model.iterations=2500 eval_every=125 sample_every=500
VAE_ARGS ?= model.iterations=3000 eval_every=250 sample_every=1000
REALNESS_ARGS ?= model.iterations=600
PIXEL_ARGS ?= generations=2000 log_every=250
EGAN_QUICK_ARGS ?= model.iterations=12 eval_every=4 eval_samples=200 sample_every=6
VAE_QUICK_ARGS ?= model.iterations=30 eval_every=10 eval_samples=200 sample_every=15
PIXEL_QUICK_ARGS ?= generations=20 log_every=10 eval_samples=200

egan: gan-egan gan-dcgan ## E-GAN vs DCGAN on the shapes world (seed 003): 2,500 iterations each (~60 min; make -j2: ~30), then figures/egan/
	$(call gan_analysis,egan,$(GAN_PATHS),figures/egan)

gan-egan gan-dcgan: gan-%:
	$(call gan_train,$(GAN_PATHS)) model=$* $(EGAN_ARGS)

egan-quick: ## egan on a tiny budget, own store (paths=gan_quick), into figures-quick/egan/ (about 2 min)
	$(call gan_train,$(GAN_QUICK_PATHS)) model=egan $(EGAN_QUICK_ARGS)
	$(call gan_train,$(GAN_QUICK_PATHS)) model=dcgan $(EGAN_QUICK_ARGS)
	$(call gan_analysis,egan,$(GAN_QUICK_PATHS),figures-quick/egan)

facegen: gan-facegen gan-dcgan ## FaceGen on the shapes world (seed 004): realness CNN, pixel GA (realness, CLIP), VAE, DCGAN, then figures/facegen/
	$(call gan_analysis,facegen,$(GAN_PATHS),figures/facegen)

gan-facegen:
	$(call gan_train,$(GAN_PATHS)) model=realness $(REALNESS_ARGS)
	$(call gan_pixel,$(GAN_PATHS)) fitness=realness $(PIXEL_ARGS)
	$(call gan_pixel,$(GAN_PATHS)) fitness=clip $(PIXEL_ARGS)
	$(call gan_train,$(GAN_PATHS)) model=vae $(VAE_ARGS)

facegen-quick: ## facegen on a tiny budget, own store (paths=gan_quick), into figures-quick/facegen/ (about 2 min)
	$(call gan_train,$(GAN_QUICK_PATHS)) model=realness model.iterations=40
	$(call gan_pixel,$(GAN_QUICK_PATHS)) fitness=realness $(PIXEL_QUICK_ARGS)
	$(call gan_pixel,$(GAN_QUICK_PATHS)) fitness=clip $(PIXEL_QUICK_ARGS)
	$(call gan_train,$(GAN_QUICK_PATHS)) model=vae $(VAE_QUICK_ARGS)
	$(call gan_train,$(GAN_QUICK_PATHS)) model=dcgan $(EGAN_QUICK_ARGS)
	$(call gan_analysis,facegen,$(GAN_QUICK_PATHS),figures-quick/facegen)

eval: ## thesis ch. 5 in the shapes world: runs the evaluation sweeps missing from the store (shapes x 4 algorithms, colours, DCGAN), then figures/eval/
	$(PY) -m analysis eval --run-missing $(store_arg) --out figures/eval

eval-only: ## the same tables and figures from the evaluation runs already in the store, running nothing
	$(PY) -m analysis eval $(store_arg) --out figures/eval

eval-quick: ## a first look at ch. 5: 3 shapes x GA and random x 2 repetitions, small and short, own store (paths=eval_quick), into $(EVAL_QUICK_OUT)/
	$(PY) -m analysis eval --quick --run-missing --paths eval_quick $(store_arg) --out $(EVAL_QUICK_OUT)

eval-imagenet: ## thesis ch. 5, ImageNet: BigGAN-deep 256 + CLIP, GA, 64 x 8 per class, ResNet-50 (real weights; a GPU)
	$(PY) -m analysis eval --run-missing $(store_arg) --experiments eval_imagenet --out figures/eval-imagenet

eval-cifar10: ## thesis ch. 5, CIFAR-10: the same with the CIFAR-10 CNN (make cifar10-classifier first)
	$(PY) -m analysis eval --run-missing $(store_arg) --experiments eval_cifar10 --out figures/eval-cifar10

cifar10-classifier: ## train the CIFAR-10 CNN for eval-cifar10 (CIFAR-10 from ~/.cache/latentevo/data, downloaded when online)
	$(PY) -m latentevo.evaluation.train_cifar10
