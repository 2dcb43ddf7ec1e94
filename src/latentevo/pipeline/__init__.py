"""The search pipeline: runs packed together over shared models, one loop for one run or many.

`spec` checks a job and says which jobs can share models, `models` builds them and scores many
runs' candidates in one pass, `member` is one run inside a pack (its job, MLflow run, algorithm,
random streams), `observers` what a run does each generation, `pack` the loop, `task` the Hydra
task of run.py.
"""

from .pack import Outcome, Preempted, run_pack
from .spec import RunSpec, pack_key
from .task import enrolling, run_job

__all__ = ["Outcome", "Preempted", "RunSpec", "enrolling", "pack_key", "run_job", "run_pack"]
