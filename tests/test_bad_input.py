"""The bad-input matrix of docs/reliability.md, one real `python run.py` per row: each ends with
one `error:` line naming the problem and the fix, a non-zero exit, no run left RUNNING, and
nothing already logged lost."""

import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from faulty_generators import DELAY_ENV
from hydra import compose, initialize_config_dir
from pipeline_cli import MECHANICS_CLIP, ROOT, error_lines, run_cli, runs_of, start_cli

from latentevo.resume import Job

TESTS_DIR = str(Path(__file__).resolve().parent)
LONG_PROMPT = "prompt='" + " ".join(["a big red circle on the left"] * 5) + "'"


@dataclass
class Case:
    args: list
    message: str
    #: status of the run the case creates before failing (its metrics must survive); None: no run
    run_status: str | None = None
    #: (tmp_path, uri, args) -> more args, prepared files, or a cleanup to call after the run
    prepare: Callable | None = None
    uri: str | None = None
    env: dict | None = None


def job_of(uri: str, args: list[str]) -> Job:
    """The job (config identity, checkpoint path) that `run.py ARGS` would run."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[a for a in args if isinstance(a, str)])
    return Job.of(cfg, uri)


def corrupt_checkpoint(tmp_path, uri, args):
    path = job_of(uri, args).checkpoint
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"latentevo-checkpoint 2\n{\"config_hash\": \"x\", \"hmac_sha256\": \"0\"}\nnot a pickle")


def disk_full(tmp_path, uri, args):
    """The checkpoint is written through a temporary file; make that file /dev/full, which fails
    every write with ENOSPC, as a full disk does."""
    path = job_of(uri, args).checkpoint
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_name(path.name + ".partial").symlink_to("/dev/full")


def output_dir_blocked(tmp_path, uri, args):
    """A file where the run's output directory should go: it cannot be created, even by root."""
    (tmp_path / "out").write_text("in the way")


def checkpoint_dir_blocked(tmp_path, uri, args):
    (tmp_path / "blocked").write_text("in the way")
    return ["paths.checkpoints=" + str(tmp_path / "blocked" / "checkpoints")]


def missing_weights(tmp_path, uri, args):
    (tmp_path / "weights").mkdir()
    return ["clip.random_init=false", f"+clip.weights_dir={tmp_path / 'weights'}"]


def corrupt_weights(tmp_path, uri, args):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "clip.safetensors").write_bytes(b"\0" * 64)
    (weights / "clip.json").write_text("{}")
    (weights / "MANIFEST.sha256").write_text(f"{'0' * 64}  clip.safetensors\n{'0' * 64}  clip.json\n")
    return ["clip.random_init=false", f"+clip.weights_dir={weights}"]


def not_an_image(tmp_path, uri, args):
    (tmp_path / "notes.png").write_text("not an image")
    return [f"image_prompt={tmp_path / 'notes.png'}"]


def truncated_image(tmp_path, uri, args):
    from PIL import Image

    path = tmp_path / "truncated.png"
    Image.new("RGB", (64, 64), (10, 200, 30)).save(path)
    path.write_bytes(path.read_bytes()[:60])
    return [f"image_prompt={path}"]


def job_already_running(tmp_path, uri, args):
    """A first process runs the same job (slowed down) until the second one has been refused."""
    first = start_cli(args, uri, tmp_path / "first", env={"PYTHONPATH": TESTS_DIR, DELAY_ENV: "0.5"})
    experiment = next(a.split("=", 1)[1] for a in args if a.startswith("experiment_name="))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and first.poll() is None:
        _, runs = runs_of(uri, experiment)
        if runs and "best_cos_sim" in runs[0].data.metrics:
            break
        time.sleep(0.2)

    def stop_first():
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
        assert first.returncode == 128 + signal.SIGTERM

    return stop_first


SLOW = "generator._target_=faulty_generators.SlowShapes"
CASES = {
    "unknown generator": Case(["generator=stylegan9"], "Could not find 'generator/stylegan9'; available: "
                              "biggan_deep_128, biggan_deep_256, biggan_deep_512, dcgan_shapes, shapes"),
    "unknown algorithm": Case(["algo=simulated_annealing"],
                              "Could not find 'algo/simulated_annealing'; available: adam, cmaes"),
    "unknown scorer": Case(["clip=vit_h14"], "Could not find 'clip/vit_h14'; available: shapes, vit_b_32"),
    "config group set to null": Case(["evaluation=null"], "Config group override must be a string or a list. Got "
                                     "NoneType; to leave a config group out, write ~group"),
    "unknown setting": Case(["popsize=8"], "Could not override 'popsize'"),
    "empty prompt": Case(["prompt=''"], "prompt is empty; give one"),
    "whitespace prompt": Case(["prompt='   '"], "prompt is empty; give one"),
    "prompt longer than the context": Case([LONG_PROMPT], "longer than the scorer's context of"),
    "prompt not UTF-8": Case([b"prompt=a r\xe9d circle"],
                             "argument 'prompt=a r\\xe9d circle' is not valid UTF-8 text; retype it"),
    "empty prompt term": Case(["prompt='a red star | '"], "prompt term 1 ('') is empty; write terms as"),
    "prompt weight not a number": Case(["prompt='a red star:x'"],
                                       "prompt term 0 ('a red star:x') has weight 'x'; a weight must be a positive"),
    "prompt weight 0": Case(["prompt='a red star:0'"], "has weight '0'; a weight must be a positive finite number"),
    "negative prompt weight": Case(["prompt='a red star:-1'"], "has weight '-1'; a weight must be a positive"),
    "infinite prompt weight": Case(["prompt='a red star:inf'"], "has weight 'inf'; a weight must be a positive"),
    "prompt term longer than the context": Case([LONG_PROMPT.replace("prompt='", "prompt='a red star | ")],
                                                "prompt term 1 ('a big red circle"),
    "image prompt file missing": Case(["image_prompt='/nonexistent/target.png'"],
                                      "image_prompt file /nonexistent/target.png does not exist"),
    "image prompt not an image": Case([], "is not an image PIL can read", prepare=not_an_image),
    "image prompt unreadable": Case([], "cannot be read", prepare=truncated_image),
    "image prompt scene incomplete": Case(["image_prompt='scene:shape=star'"],
                                          "image_prompt scene names no colour, background"),
    "image_prompt_weight 0": Case(["image_prompt='scene:shape=star,colour=red,background=blue'",
                                   "image_prompt_weight=0"], "image_prompt_weight has weight '0.0'"),
    "pop_size 0": Case(["pop_size=0"], "pop_size must be an integer >= 1, got 0"),
    "pop_size 1 for DE": Case(["algo=de", "pop_size=1"], "pop_size=1 is too small for DE; it needs pop_size >= 4"),
    "pop_size 3 for DE": Case(["algo=de", "pop_size=3"], "pop_size=3 is too small for DE; it needs pop_size >= 4"),
    "generations 0": Case(["generations=0"], "generations must be an integer >= 1, got 0"),
    "negative generations": Case(["generations=-5"], "generations must be an integer >= 1, got -5"),
    "generations not a number": Case(["generations=ten"],
                                     "generations: Value 'ten' of type 'str' could not be converted to Integer"),
    "seed not a whole number": Case(["seed=1.5"],
                                    "seed: Value '1.5' of type 'float' could not be converted to Integer"),
    "resume neither true nor false": Case(["resume=maybe"], "resume: Value 'maybe' is not a valid bool (type str)"),
    "batch_size neither auto nor a number": Case(["batch_size=big"],
                                                 "batch_size must be auto or an integer >= 1, got 'big'"),
    "negative seed": Case(["seed=-1"], "seed must be an integer >= 0, got -1"),
    "unknown device": Case(["device=tpu"], "device must be one of auto, cpu, cuda"),
    "negative checkpoint_every": Case(["checkpoint_every=-1"], "checkpoint_every must be an integer >= 0"),
    "population larger than memory": Case(["pop_size=100000000000"], "pop_size=100000000000 needs about"),
    "no augmented views": Case(["augment=crops", "augment.views=0"], "augment.views must be an integer >= 1, got 0"),
    "NSGA-II with one objective": Case(["algo=nsga2", "objectives=[clip]"], "NSGA2 needs two or more objectives"),
    "one objective per term, one term": Case(["algo=nsga2", "objectives=[terms]", "prompt=a red star"],
                                             "objectives=[terms] is one per prompt term, and the prompt has 1"),
    "several objectives, single-objective algorithm": Case(
        ["algo=ga", "objectives=[terms]", "prompt='a red star | -a red background'"],
        "GA optimises one objective; objectives=['terms'] needs a multi-objective algorithm (algo=nsga2)"),
    "clip and terms together, or neither first": Case(["algo=nsga2", "objectives=[clip,terms]"],
                                                      "objectives must be distinct names of clip, terms, realness"),
    "realness objective without a realness model": Case(["algo=nsga2"], "objective realness needs a realness model"),
    "pick weights, one per column": Case(
        ["algo=nsga2", "objectives=[terms]", "prompt='a red star | a blue background | -a red background'"],
        "algo.pick_weights must be 3 non-negative weights, one per objective (term0, term1, term2)"),
    "gradient search on the shapes generator": Case(["algo=adam", "generator=shapes"],
                                                    "generator=shapes is not differentiable"),
    "NaN from the generator": Case(["generator._target_=faulty_generators.NaNShapes"], "fitness is NaN or infinite",
                                   run_status="FAILED"),
    "inf from the generator": Case(["generator._target_=faulty_generators.InfShapes"], "fitness is NaN or infinite",
                                   run_status="FAILED"),
    "missing weights": Case([], "missing weights file", prepare=missing_weights),
    "corrupt weights": Case([], "checksum mismatch", prepare=corrupt_weights),
    "corrupt checkpoint": Case([], "is corrupt or was not written by this user's runs", prepare=corrupt_checkpoint),
    "output directory not writable": Case([], "cannot write", prepare=output_dir_blocked),
    "checkpoint directory not writable": Case([], "cannot write", prepare=checkpoint_dir_blocked),
    "disk full": Case(["checkpoint_every=1"], "no space left writing", run_status="FAILED", prepare=disk_full),
    "tracking server unreachable": Case([], "cannot reach MLflow tracking server http://127.0.0.1:9",
                                        uri="http://127.0.0.1:9"),
    "tracking store directory missing": Case([], "does not exist", uri="sqlite:////nonexistent/latentevo/mlflow.db"),
    "a sweep to Slurm without sbatch": Case(["-m", "hydra/launcher=slurm"], "needs Slurm's sbatch on PATH, and there "
                                            "is none here", env={"PATH": "/nonexistent"}),
    "shared checkpoint directory missing": Case(["-m", "hydra/launcher=submitit_local",
                                                 "paths.checkpoints=/nonexistent/shared/checkpoints"],
                                                "paths.checkpoints /nonexistent/shared/checkpoints does not exist; "
                                                "create it on a disk that every node reads"),
    "tracking server unreachable, a sweep to a cluster": Case(["-m", "hydra/launcher=submitit_local"],
                                                              "cannot reach MLflow tracking server http://127.0.0.1:9",
                                                              uri="http://127.0.0.1:9"),
    "same job running in another process": Case([SLOW, "generations=200"], "another process is running this job",
                                                run_status="KILLED", prepare=job_already_running),
}


def documented_cases() -> list[str]:
    table = (ROOT / "docs" / "reliability.md").read_text().split("## Bad input", 1)[1]
    return re.findall(r"^\| ([^|]+?) \|", table, flags=re.M)[1:]  # rows after the header


def test_the_docs_table_lists_exactly_the_tested_cases():
    assert documented_cases() == list(CASES)


#: the cases that start a real process beside the run under test
PROCESS_CASES = {"same job running in another process"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.process) if n in PROCESS_CASES else n
                                  for n in CASES])
def test_bad_input_is_one_line_nonzero_exit_and_nothing_lost(store, tmp_path, name):
    case = CASES[name]
    uri = case.uri or store
    experiment = "bad_" + re.sub(r"\W+", "_", name)
    short = [] if any(str(a).startswith("generations=") for a in case.args) else ["generations=3"]
    args = [*case.args, *short, f"experiment_name={experiment}", *MECHANICS_CLIP]
    prepared = case.prepare(tmp_path, uri, args) if case.prepare else None
    extra = prepared if isinstance(prepared, list) else []
    result = run_cli([*args, *extra], uri, tmp_path / "out", env={"PYTHONPATH": TESTS_DIR} | (case.env or {}))
    if callable(prepared):
        prepared()

    assert result.returncode not in (0, None)
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and case.message in lines[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    if uri != store:
        return
    client, runs = runs_of(store, experiment)
    assert [r.info.status for r in runs] == ([case.run_status] if case.run_status else [])
    for run in runs:  # what the run logged before the failure is in the store
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "best_cos_sim")]
        assert steps and steps == list(range(len(steps)))
