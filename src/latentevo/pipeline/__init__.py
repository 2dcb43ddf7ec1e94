"""The search pipeline: runs packed together over shared models, one loop for one run or many.

`spec` checks a job, `keys` says which jobs can share models, `models` builds them and scores
many runs' candidates in one pass, `member` is one run inside a pack (its job, MLflow run,
algorithm, random streams), `observers` what a run does each generation, `pack` the loop, `task`
the Hydra task of run.py.

The names below load on first use (PEP 562): a sweep's launching process composes and groups
its jobs (`pack_key`) without importing torch or the search libraries, which only the
processes that run its packs need.
"""

from importlib import import_module

_MODULE_OF = {"Outcome": "pack", "Preempted": "pack", "run_pack": "pack", "RunSpec": "spec", "pack_key": "keys",
              "enrolling": "task", "run_job": "task"}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_MODULE_OF[name]}", __name__), name)
