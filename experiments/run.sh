#!/usr/bin/env bash
# Run one experiment's sweep in parallel jobs, then draw its figures and tables into figures/<name>/.
#   experiments/run.sh <name> [hydra overrides...]    (names: conf/experiment/*.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: experiments/run.sh <name> [overrides...]}"
shift
PY="${PY:-python}"
"$PY" run.py -m experiment="$name" "$@"
"$PY" -m analysis figures --experiments "$name" --out "figures/$name"
