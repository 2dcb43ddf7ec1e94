"""Checkpoint files: a restored pymoo algorithm carries on exactly as an uninterrupted one;
writes are atomic; corrupt, foreign, forged and mismatched files are refused with one line."""

import errno
import hashlib
import hmac
import json
import os
import pickle
import stat
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from latentevo.search import (
    CheckpointError,
    LatentProblem,
    PriorSampling,
    evolve,
    load_checkpoint,
    run_on,
    save_checkpoint,
    state_is_picklable,
)
from latentevo.search.checkpoint import MAGIC, key_file

CONF = str(Path(__file__).resolve().parents[1] / "conf")
N_VAR, BOUND = 4, 3.0


def fitness(latents):
    return -np.sum((latents - 1) ** 2, axis=1) / 100


def sample(n, rng):
    return rng.standard_normal((n, N_VAR))


EXTERNALS = {"evaluate": fitness, "sample": sample}


@pytest.fixture(autouse=True)
def own_key(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def algorithm(name: str):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=[f"algo={name}", "pop_size=8"])
    return instantiate(cfg.algo, sampling=PriorSampling(sample))


def trace(generations):
    return [(g.index, g.best_cos_sim, g.n_evals, g.cos_sim.tolist()) for g in generations]


@pytest.mark.parametrize("name", ["ga", "de", "de_best1_bin", "de_rand1_exp", "random"])
def test_a_restored_algorithm_continues_exactly_as_an_uninterrupted_one(tmp_path, name):
    straight = trace(evolve(algorithm(name), LatentProblem(fitness, N_VAR, BOUND), 10, 3))
    first = algorithm(name)
    steps = evolve(first, LatentProblem(fitness, N_VAR, BOUND), 10, 3)
    head = [next(steps) for _ in range(4)]
    save_checkpoint(tmp_path / "run.ckpt", {"algorithm": first}, "abc", EXTERNALS)
    restored = load_checkpoint(tmp_path / "run.ckpt", "abc", EXTERNALS)["algorithm"]
    assert restored.problem.evaluate_latents is fitness  # the caller's function, not a copy
    assert trace(head) + trace(run_on(restored)) == straight


def test_cmaes_keeps_its_state_in_a_generator_so_it_is_replayed_instead():
    assert not state_is_picklable(algorithm("cmaes"))
    assert state_is_picklable(algorithm("ga"))


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "run.ckpt"
    save_checkpoint(path, {"generation": 3}, "abc", {})
    path.with_name("run.ckpt.partial").symlink_to("/dev/full")  # every write: ENOSPC
    with pytest.raises(OSError) as err:
        save_checkpoint(path, {"generation": 4}, "abc", {})
    assert err.value.errno == errno.ENOSPC
    assert load_checkpoint(path, "abc", {}) == {"generation": 3}


def test_the_key_is_readable_by_its_user_alone(tmp_path):
    save_checkpoint(tmp_path / "run.ckpt", {}, "abc", {})
    assert stat.S_IMODE(key_file().stat().st_mode) == 0o600


def damaged(data: bytes, how: str) -> bytes:
    return {
        "truncated": data[:-20],
        "bit flipped": data[:-5] + bytes([data[-5] ^ 1]) + data[-4:],
        "garbage": b"\x00\x01 not a checkpoint",
        "empty": b"",
    }[how]


@pytest.mark.parametrize("how, message", [("truncated", "is corrupt or was not written by this user's runs"),
                                          ("bit flipped", "is corrupt or was not written by this user's runs"),
                                          ("garbage", "is corrupt (not a latentevo checkpoint)"),
                                          ("empty", "is corrupt (not a latentevo checkpoint)")])
def test_a_damaged_checkpoint_is_one_clear_error(tmp_path, how, message):
    path = tmp_path / "run.ckpt"
    save_checkpoint(path, {"algorithm": algorithm("ga")}, "abc", EXTERNALS)
    path.write_bytes(damaged(path.read_bytes(), how))
    with pytest.raises(CheckpointError, match="delete .* to start the run afresh") as err:
        load_checkpoint(path, "abc", EXTERNALS)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_checkpoint_from_another_user_or_for_another_config_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    save_checkpoint(path, {"generation": 1}, "abc", {})
    with pytest.raises(CheckpointError, match="written for another config"):
        load_checkpoint(path, "other", {})
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "someone else"))
    with pytest.raises(CheckpointError, match="not written by this user's runs"):
        load_checkpoint(path, "abc", {})


class Exploit:
    def __reduce__(self):
        return os.system, ("touch pwned",)


def test_a_validly_signed_pickle_still_cannot_name_arbitrary_code(tmp_path):
    """The second fence: even with the key, only the search state's packages resolve."""
    save_checkpoint(tmp_path / "key.ckpt", {}, "abc", {})  # creates the key
    payload = pickle.dumps({"algorithm": Exploit()})
    digest = hmac.new(key_file().read_bytes(), payload, hashlib.sha256).hexdigest()
    path = tmp_path / "forged.ckpt"
    path.write_bytes(MAGIC + json.dumps({"config_hash": "abc", "hmac_sha256": digest}).encode() + b"\n" + payload)
    with pytest.raises(CheckpointError, match=r"refusing to load (posix|os)\.system"):
        load_checkpoint(path, "abc", {})
    assert not (Path.cwd() / "pwned").exists()
