"""Checkpoint files: a pickled search state (the pymoo algorithm with its population, operators,
random generator and generation counter, plus what the caller adds), written atomically and
read back only after checks.

Trust boundary: a pymoo algorithm can only be saved by pickling, and unpickling can run code.
So a checkpoint is authenticated before it is unpickled: it carries an HMAC-SHA256 of its
payload under a secret key of this user (`~/.config/latentevo/checkpoint.key`, mode 0600), which
detects truncation and corruption and also rejects a file this user's runs did not write (a
checkpoint copied from someone else, or forged). The unpickler then only resolves names from the
packages a search state is made of (pymoo, numpy, cma, latentevo.search), a second fence. Objects
that must not be pickled (the fitness function and prior sampler, closures over torch models)
are left out by name and handed back on load.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import io
import json
import os
import pickle
import secrets
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import LatentevoError

# 2: each run's own random streams (runs share processes in packs)
MAGIC = b"latentevo-checkpoint 2\n"
KEY_BYTES = 32
# packages a search state's classes come from; builtins are allowed name by name
SAFE_PACKAGES = ("pymoo", "numpy", "cma", "copyreg", "collections", "_codecs", "latentevo.search")
SAFE_BUILTINS = {"bool", "int", "float", "complex", "str", "bytes", "bytearray", "tuple", "list", "dict", "set",
                 "frozenset", "slice", "range", "object"}


class CheckpointError(LatentevoError):
    """A checkpoint that cannot be written or read."""


def key_file() -> Path:
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config_home / "latentevo" / "checkpoint.key"


def _key() -> bytes:
    """This user's checkpoint key, created on first use (readable by the user alone)."""
    path = key_file()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another run created it first
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(KEY_BYTES))
    return path.read_bytes()


def _safe(module: str) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in SAFE_PACKAGES)


def module_attribute(module: str, name: str) -> Any:
    """A function found by its module and name (what the pickle of a decorated function holds)."""
    if not _safe(module):
        raise pickle.UnpicklingError(f"refusing to import {module}")
    return getattr(importlib.import_module(module), name)


class _Pickler(pickle.Pickler):
    def __init__(self, file, externals: Mapping[str, object]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._external_names = {id(obj): name for name, obj in externals.items()}

    def persistent_id(self, obj):
        return self._external_names.get(id(obj))

    def reducer_override(self, obj):
        # pymoo's operators hold decorated functions (e.g. `binary_tournament`) whose wrapper is
        # a local function: pickle them as the module attribute they are.
        if isinstance(obj, types.FunctionType) and "<locals>" in obj.__qualname__:
            original = getattr(obj, "__wrapped__", None) or _closure_function(obj)
            if original is not None and getattr(sys.modules.get(original.__module__), original.__name__, None) is obj:
                return module_attribute, (original.__module__, original.__name__)
        return NotImplemented


def _closure_function(wrapper: types.FunctionType) -> types.FunctionType | None:
    cells = wrapper.__closure__ or ()
    return next((c.cell_contents for c in cells if isinstance(c.cell_contents, types.FunctionType)), None)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, externals: Mapping[str, object]):
        super().__init__(file)
        self._externals = externals

    def persistent_load(self, pid):
        if pid not in self._externals:
            raise pickle.UnpicklingError(f"the checkpoint needs {pid!r}, which was not provided")
        return self._externals[pid]

    def find_class(self, module, name):
        allowed = (
            (module == "builtins" and name in SAFE_BUILTINS)
            or _safe(module)
        )
        if not allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def save_checkpoint(path: Path, state: Mapping[str, Any], config_hash: str, externals: Mapping[str, object]) -> None:
    """Writes `state` to `path` atomically: a crash of the process at any moment leaves the
    previous checkpoint or the new one, never a partial file. Not synced to disk (that would cost
    more than a shapes-world generation): after a power loss a checkpoint may be lost or fail its
    HMAC check, which says so."""
    buffer = io.BytesIO()
    _Pickler(buffer, externals).dump(dict(state))
    payload = buffer.getvalue()
    header = {"config_hash": config_hash, "hmac_sha256": hmac.new(_key(), payload, hashlib.sha256).hexdigest()}
    partial = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(partial, "wb") as f:
            f.write(MAGIC + json.dumps(header).encode() + b"\n" + payload)
    except OSError as err:
        err.filename = err.filename or str(partial)  # a failed write names no file
        raise
    os.replace(partial, path)


def load_checkpoint(path: Path, config_hash: str, externals: Mapping[str, object]) -> dict[str, Any]:
    """The state saved by `save_checkpoint`, after checking that it is intact, written by this
    user, and for this config."""
    fix = f"delete {path} to start the run afresh"
    data = path.read_bytes()
    try:
        if not data.startswith(MAGIC):
            older = data.startswith(MAGIC.split()[0])
            raise ValueError("written by another version of latentevo" if older else "not a latentevo checkpoint")
        header_line, payload = data[len(MAGIC):].split(b"\n", 1)
        header = json.loads(header_line)
        expected = hmac.new(_key(), payload, hashlib.sha256).hexdigest()
        authentic = hmac.compare_digest(str(header["hmac_sha256"]), expected)
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"checkpoint {path} is corrupt ({err}); {fix}") from None
    if not authentic:
        raise CheckpointError(f"checkpoint {path} is corrupt or was not written by this user's runs "
                              f"(its HMAC does not match {key_file()}); {fix}")
    if header["config_hash"] != config_hash:
        raise CheckpointError(f"checkpoint {path} was written for another config "
                              f"({header['config_hash']}, this run is {config_hash}); {fix}")
    try:
        return _Unpickler(io.BytesIO(payload), externals).load()
    except (pickle.UnpicklingError, AttributeError, ImportError, EOFError) as err:
        raise CheckpointError(f"checkpoint {path} cannot be loaded ({err}); {fix}") from None
