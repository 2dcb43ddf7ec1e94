"""What every trainer's recipe sets (its values live in conf/gan/model/*.yaml; the defaults here
are for trainers built in code)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Steps:
    """How long and how fast: optimiser steps, the batch of each, the learning rate."""

    iterations: int
    batch_size: int = 64
    lr: float = 1e-3


@dataclass
class AdversarialSteps(Steps):
    """Adam as Radford et al. set it for adversarial networks (DCGAN): lr 2e-4, beta1 0.5."""

    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
