#!/usr/bin/env bash
# Run one experiment's sweep in parallel jobs, then draw its convergence figure.
#   experiments/run.sh <name> [hydra overrides...]    (names: conf/experiment/*.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: experiments/run.sh <name> [overrides...]}"
shift
PY="${PY:-python}"
by="choice.algo"
metric="best_cos_sim"
[ "$name" = generators ] && by="choice.generator choice.algo"
[ "$name" = unseen_prompts ] && by="prompt" && metric="truth_match"
"$PY" run.py -m experiment="$name" "$@"
mkdir -p figures
# shellcheck disable=SC2086
"$PY" analysis/convergence.py "$name" --by $by --metric "$metric" --out "figures/$name.png"
