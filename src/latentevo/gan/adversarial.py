"""GAN training on the project's DCGAN architecture: the DCGAN baseline and E-GAN.

Both share the discriminator, its loss and the shapes-world recipe's tricks (instance noise
annealed to zero over the first half, one-sided label smoothing), so they differ only in how
the generator is updated: one non-saturating step (DCGAN) or three mutated children of which
the fittest survives (E-GAN)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from ..models.dcgan import DCGANNetD, DCGANNetG, init_weights
from .datasets import ImageSource
from .losses import MUTATIONS, discriminator_loss


@dataclass
class GANConfig:
    iterations: int
    batch_size: int
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    instance_noise: float = 0.15
    real_label: float = 0.9
    # E-GAN only
    d_steps: int = 1
    parents: int = 1
    mutations: tuple[str, ...] = tuple(MUTATIONS)
    gamma: float = 0.5


class GANTrainer:
    """A generator and discriminator on the DCGAN architecture, with Adam for each."""

    def __init__(self, cfg: GANConfig, source: ImageSource, g: torch.Generator):
        self.cfg, self.source, self.g = cfg, source, g
        self.net_g, self.net_d = DCGANNetG(cfg.nz, cfg.ngf), DCGANNetD(cfg.ndf)
        self.net_g.apply(init_weights)
        self.net_d.apply(init_weights)
        self.opt_g = self._adam(self.net_g)
        self.opt_d = self._adam(self.net_d)
        self.iteration = 0

    def _adam(self, net: torch.nn.Module) -> torch.optim.Adam:
        return torch.optim.Adam(net.parameters(), lr=self.cfg.lr, betas=(self.cfg.beta1, self.cfg.beta2))

    def noisy(self, x: torch.Tensor) -> torch.Tensor:
        sigma = self.cfg.instance_noise * max(0.0, 1 - 2 * self.iteration / self.cfg.iterations)
        return x + sigma * torch.randn(x.shape, generator=self.g) if sigma > 0 else x

    def z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.nz, generator=self.g)

    def d_step(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        loss = discriminator_loss(self.net_d(self.noisy(real)), self.net_d(self.noisy(fake.detach())), self.cfg.real_label)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return loss.item()

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], batch norm with running statistics (as a deployed generator)."""
        self.net_g.eval()
        images = (self.net_g(z) + 1) / 2
        self.net_g.train()
        return images

    def export(self) -> tuple[dict[str, torch.Tensor], dict]:
        return self.net_g.state_dict(), {"model": "dcgan", "architecture": {"nz": self.cfg.nz, "ngf": self.cfg.ngf}}


class DCGANTrainer(GANTrainer):
    """Alternating steps: D on a real and a fake batch, then G with the non-saturating loss."""

    def step(self) -> dict[str, float]:
        real = self.source.batch(self.cfg.batch_size, self.g)
        fake = self.net_g(self.z(self.cfg.batch_size))
        loss_d = self.d_step(real, fake)
        loss_g = 2 * MUTATIONS["heuristic"](self.net_d(self.noisy(fake)))  # = BCE(D(G(z)), 1)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.iteration += 1
        return {"loss_d": loss_d, "loss_g": loss_g.item()}


@dataclass
class Child:
    """One offspring: its mutation, its generator and optimiser state, and its fitness terms."""

    mutation: str
    parent: int
    state: dict
    opt_state: dict
    loss: float
    quality: float
    diversity: float
    fitness: float


def select(children: list[Child], mu: int) -> list[Child]:
    """(μ, λ) survival: the μ fittest children, fittest first; parents never survive."""
    return sorted(children, key=lambda c: c.fitness, reverse=True)[:mu]


class EGANTrainer(GANTrainer):
    """E-GAN (Wang et al. 2019, Algorithm 1): per iteration, `d_steps` discriminator updates
    against the population's samples, then every parent makes one child per mutation (one
    Adam step of that loss); children are scored by F = F_q + γ F_d on a shared batch and the
    `parents` fittest become the next population."""

    def __init__(self, cfg: GANConfig, source: ImageSource, g: torch.Generator):
        super().__init__(cfg, source, g)
        unknown = set(cfg.mutations) - set(MUTATIONS)
        if unknown:
            raise ValueError(f"unknown mutations {sorted(unknown)}; choose from {', '.join(MUTATIONS)}")
        self.population = [(copy.deepcopy(self.net_g.state_dict()), copy.deepcopy(self.opt_g.state_dict()))] * cfg.parents

    def load(self, state: dict, opt_state: dict) -> None:
        self.net_g.load_state_dict(state)
        self.opt_g.load_state_dict(opt_state)

    def population_fakes(self, n: int) -> torch.Tensor:
        """n samples, split evenly over the parents."""
        fakes = []
        for i, chunk in enumerate(np.array_split(np.arange(n), len(self.population))):
            self.load(*self.population[i])
            with torch.no_grad():
                fakes.append(self.net_g(self.z(len(chunk))))
        return torch.cat(fakes)

    def fitness(self, real: torch.Tensor, z: torch.Tensor) -> tuple[float, float]:
        """Quality F_q = E[D(G(z))]; diversity F_d = -log ||∇_D L_D||, the discriminator's
        gradient on this child's samples (a child that spreads its samples moves D less)."""
        fake = self.net_g(z).detach()
        fake_logits = self.net_d(fake)
        loss_d = discriminator_loss(self.net_d(real), fake_logits)
        grads = torch.autograd.grad(loss_d, list(self.net_d.parameters()))
        norm = torch.sqrt(sum((gr**2).sum() for gr in grads))
        return torch.sigmoid(fake_logits).mean().item(), -torch.log(norm).item()

    def make_children(self, real: torch.Tensor, z_eval: torch.Tensor) -> list[Child]:
        children = []
        for p, (state, opt_state) in enumerate(self.population):
            for name in self.cfg.mutations:
                self.load(state, opt_state)
                loss = MUTATIONS[name](self.net_d(self.noisy(self.net_g(self.z(self.cfg.batch_size)))))
                self.opt_g.zero_grad(set_to_none=True)
                loss.backward()
                self.opt_g.step()
                quality, diversity = self.fitness(real, z_eval)
                children.append(Child(name, p, copy.deepcopy(self.net_g.state_dict()), copy.deepcopy(self.opt_g.state_dict()),
                                      loss.item(), quality, diversity, quality + self.cfg.gamma * diversity))
        return children

    def step(self) -> dict[str, float]:
        for _ in range(self.cfg.d_steps):
            loss_d = self.d_step(self.source.batch(self.cfg.batch_size, self.g), self.population_fakes(self.cfg.batch_size))
        children = self.make_children(self.source.batch(self.cfg.batch_size, self.g), self.z(self.cfg.batch_size))
        survivors = select(children, self.cfg.parents)
        self.population = [(c.state, c.opt_state) for c in survivors]
        self.load(*self.population[0])  # the fittest is the one sampled and exported
        self.iteration += 1
        metrics = {"loss_d": loss_d, "fitness_best": survivors[0].fitness,
                   "mutation_won": float(self.cfg.mutations.index(survivors[0].mutation))}
        for c in children:
            if c.parent == 0:
                metrics |= {f"loss_g_{c.mutation}": c.loss, f"fitness_{c.mutation}": c.fitness,
                            f"quality_{c.mutation}": c.quality, f"diversity_{c.mutation}": c.diversity}
        return metrics
