"""The in-process `run_cli` the tests use stands for a real `python run.py`: the same exit
status, the same error line and the same runs, for a bad input and for a run that finishes."""

import pytest
from pipeline_cli import MECHANICS_CLIP, error_lines, histories, run_cli, runs_of

pytestmark = pytest.mark.process


def test_a_bad_input_reads_the_same_in_a_process(store, tmp_path):
    args = ["pop_size=0", "experiment_name=harness_bad"]
    inside, real = (run_cli(args, store, tmp_path / str(p), process=p) for p in (False, True))
    assert inside.returncode == real.returncode == 1
    assert error_lines(inside.stderr) == error_lines(real.stderr) == ["error: pop_size must be an integer >= 1, got 0"]
    assert runs_of(store, "harness_bad")[1] == []


def test_a_run_is_the_same_in_a_process(store, tmp_path):
    logged = {}
    for process in (False, True):
        experiment = f"harness_{'process' if process else 'inside'}"
        result = run_cli(["generations=3", f"experiment_name={experiment}", *MECHANICS_CLIP], store,
                         tmp_path / experiment, process=process)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "best cos_sim" in result.stdout
        client, runs = runs_of(store, experiment)
        assert [r.info.status for r in runs] == ["FINISHED"]
        logged[process] = histories(client, runs[0].info.run_id)
    assert logged[False] == logged[True] and len(logged[True]["best_cos_sim"]) == 3
