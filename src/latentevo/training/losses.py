"""Adversarial losses on discriminator logits, D(x) = sigmoid(logit).

The three generator losses are E-GAN's mutations (Wang et al. 2019, eqs. 2-4), each minimised:
minimax 1/2 E[log(1 - D(G(z)))], heuristic (non-saturating) -1/2 E[log D(G(z))], and
least-squares E[(D(G(z)) - 1)^2]."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def minimax_loss(logits: torch.Tensor) -> torch.Tensor:
    return -0.5 * F.softplus(logits).mean()  # log(1 - sigmoid(l)) = -softplus(l)


def heuristic_loss(logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * F.softplus(-logits).mean()  # -log sigmoid(l) = softplus(-l)


def least_squares_loss(logits: torch.Tensor) -> torch.Tensor:
    return ((torch.sigmoid(logits) - 1) ** 2).mean()


MUTATIONS = {"minimax": minimax_loss, "heuristic": heuristic_loss, "least_squares": least_squares_loss}


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))], with the real target optionally smoothed."""
    return F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label)) + \
        F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
