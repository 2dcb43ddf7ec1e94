"""latentevo's Hydra launcher: a sweep's jobs run as packs (hydra/launcher=packed)."""
