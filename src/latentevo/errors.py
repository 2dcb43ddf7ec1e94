"""User-facing errors: each carries one line that says what is wrong and what to do."""

import errno


class LatentevoError(Exception):
    """An error the user can act on; entry points print its message alone and exit non-zero."""


class ConfigError(LatentevoError):
    """A configuration value that cannot work (unknown name, impossible size, bad prompt)."""


class WeightsError(LatentevoError):
    """Model weights that are missing, corrupt or do not fit the architecture."""


class StorageError(LatentevoError):
    """A file or directory that cannot be written: no space, no permission, a file in the way."""


NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def storage_error(err: OSError) -> StorageError:
    where = f"{err.filename}" if err.filename else "a file"
    if err.errno in NO_SPACE:
        return StorageError(f"no space left writing {where} ({err.strerror}); free disk space, then run the same "
                            "command again: it resumes from its last checkpoint")
    return StorageError(f"cannot write {where} ({err.strerror}); choose a writable directory (hydra.run.dir=..., "
                        "paths.checkpoints=...) or fix its permissions")
