"""GAN training on the project's DCGAN architecture: the DCGAN and E-GAN.

Both share the discriminator, its loss and the shapes-world recipe's tricks (instance noise on
both of the discriminator's inputs, annealed to zero over the first `noise_anneal` of the run,
and one-sided label smoothing): flat-coloured renders are easy to tell from a young generator's
noise, and without them the discriminator wins within a hundred steps. They differ in how the
generator is updated: one non-saturating step (DCGAN) or three mutated children of which the
fittest survives (E-GAN). The DCGAN can be class-conditional (a projection discriminator told
the renders' attributes, which made the difference between blobs and shapes, docs/world.md) and
can return an exponential moving average of its generator's weights."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.dcgan import WORLD_CLASSES, DCGANNetD, DCGANNetG, init_weights
from .data import ImageSource
from .losses import MUTATIONS, discriminator_loss
from .recipe import AdversarialSteps
from .state import StateDicts

# the chunk of latents a generator is sampled in: 2,000 samples of a wide one at once fill a GPU
SAMPLE_CHUNK = 500


@dataclass
class GANConfig(AdversarialSteps):
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    # "transposed" (Radford et al.) or "resize" (nearest resize + 3x3 convolution: no checkerboard)
    upsample: str = "transposed"
    # attributes G is conditioned on and D projects (DCGAN only; the shapes world's labels)
    classes: tuple[str, ...] = ()
    temperature: float = 0.1
    instance_noise: float = 0.15
    # the fraction of the run over which the instance noise falls to zero
    noise_anneal: float = 0.5
    real_label: float = 0.9
    # decay of the moving average of G's weights that is sampled and saved (0: the last iterate)
    ema: float = 0.0
    device: str = "cpu"


@dataclass
class EGANConfig(GANConfig):
    # discriminator updates per iteration, parents kept, the children's mutations, diversity's weight
    d_steps: int = 1
    parents: int = 1
    mutations: tuple[str, ...] = tuple(MUTATIONS)
    gamma: float = 0.5


def check(cfg: GANConfig, source: ImageSource) -> dict[str, int]:
    """The classes the networks are built with, after the one-line checks of the recipe."""
    if not cfg.noise_anneal > 0:
        raise ConfigError(f"noise_anneal must be > 0 (a fraction of the run), got {cfg.noise_anneal}")
    unknown = set(cfg.classes) - set(WORLD_CLASSES)
    if unknown:
        raise ConfigError(f"unknown classes {sorted(unknown)}; choose from {', '.join(WORLD_CLASSES)}")
    if cfg.classes and not source.labelled:
        raise ConfigError(f"a conditional GAN needs attribute labels, which data set {source.name} has not; "
                          "train it on dataset=shapes or with model.classes=[]")
    return {name: WORLD_CLASSES[name] for name in cfg.classes}


class GANTrainer(StateDicts):
    """A generator and discriminator on the DCGAN architecture, with Adam for each, on `device`.

    Batches are drawn on the CPU from g; latents and noise come from g too on the CPU, or from a
    second generator seeded alike on an accelerator."""

    STATE_DICTS = ("net_g", "net_d", "opt_g", "opt_d")

    def __init__(self, cfg: GANConfig, source: ImageSource, g: torch.Generator):
        classes = check(cfg, source)
        self.cfg, self.source, self.g = cfg, source, g
        self.device = torch.device(cfg.device)
        self.g_dev = g if self.device.type == "cpu" else torch.Generator(self.device).manual_seed(g.initial_seed())
        try:
            self.net_g = DCGANNetG(cfg.nz, cfg.ngf, cfg.upsample, classes, cfg.temperature)
        except ValueError as err:  # an unknown upsampling
            raise ConfigError(str(err)) from None
        self.net_d = DCGANNetD(cfg.ndf, classes)
        self.net_g.apply(init_weights)
        self.net_d.apply(init_weights)
        self.net_g, self.net_d = self.net_g.to(self.device), self.net_d.to(self.device)
        self.ema = copy.deepcopy(self.net_g).eval() if cfg.ema > 0 else None
        self.opt_g = self._adam(self.net_g)
        self.opt_d = self._adam(self.net_d)
        self.iteration = 0
        self.latent_dim = self.net_g.latent_dim

    def _adam(self, net: torch.nn.Module) -> torch.optim.Adam:
        return torch.optim.Adam(net.parameters(), lr=self.cfg.lr, betas=(self.cfg.beta1, self.cfg.beta2))

    def sigma(self) -> float:
        return self.cfg.instance_noise * max(0.0, 1 - self.iteration / (self.cfg.noise_anneal * self.cfg.iterations))

    def noisy(self, x: torch.Tensor) -> torch.Tensor:
        sigma = self.sigma()
        return x + sigma * torch.randn(x.shape, generator=self.g_dev, device=x.device) if sigma > 0 else x

    def z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=self.g_dev, device=self.device)

    def d_step(self, real: torch.Tensor, fake: torch.Tensor, real_labels=None, fake_labels=None) -> torch.Tensor:
        loss = discriminator_loss(self.net_d(self.noisy(real), real_labels),
                                  self.net_d(self.noisy(fake.detach()), fake_labels), self.cfg.real_label)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return loss.detach()

    def generator(self) -> DCGANNetG:
        """The generator that is sampled and saved: the moving average when there is one."""
        return self.ema if self.ema is not None else self.net_g

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] on the CPU, batch norm with running statistics (as a deployed generator)."""
        net = self.generator()
        net.eval()
        device = next(net.parameters()).device  # the CPU once `network` has taken it there to be saved
        images = torch.cat([(net(chunk.to(device)) + 1) / 2 for chunk in z.split(SAMPLE_CHUNK)]).float().cpu()
        self.net_g.train()
        return images

    def class_labels(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net_g.class_labels(z)

    def network(self) -> DCGANNetG:
        return self.generator().cpu().eval()

    def architecture(self) -> dict:
        # pairs: the order of the class logits in z must survive JSON's sorted keys
        return {"nz": self.cfg.nz, "ngf": self.cfg.ngf, "upsample": self.cfg.upsample,
                "classes": list(self.net_g.classes.items()), "temperature": self.cfg.temperature}

    def state(self) -> dict:
        state = super().state() | {"iteration": self.iteration, "g_dev": self.g_dev.get_state()}
        return state | ({"ema": self.ema.state_dict()} if self.ema is not None else {})

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.iteration = state["iteration"]
        self.g_dev.set_state(state["g_dev"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])


class DCGANTrainer(GANTrainer):
    """Alternating steps: D on a real and a fake batch, then G with the non-saturating loss."""

    def real_batch(self) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        if self.net_g.classes:
            return self.source.labelled_batch(self.cfg.batch_size, self.g, self.device)
        return self.source.batch(self.cfg.batch_size, self.g, self.device), None

    def step(self) -> dict[str, torch.Tensor | float]:
        sigma = self.sigma()
        real, real_labels = self.real_batch()
        z = self.z(self.cfg.batch_size)
        fake, fake_labels = self.net_g(z), self.net_g.class_labels(z)
        loss_d = self.d_step(real, fake, real_labels, fake_labels)
        logits = self.net_d(self.noisy(fake), fake_labels)
        loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        if self.ema is not None:
            update_ema(self.ema, self.net_g, self.cfg.ema)
        self.iteration += 1
        # tensors: reading a loss waits for an accelerator, so the driver reads them when it logs
        return {"loss_d": loss_d, "loss_g": loss_g.detach(), "instance_noise": sigma}


def update_ema(ema: DCGANNetG, net: DCGANNetG, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), net.parameters()):
            e.lerp_(p, 1 - decay)
        for e, b in zip(ema.buffers(), net.buffers()):
            e.copy_(b)


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

    def __init__(self, cfg: EGANConfig, source: ImageSource, g: torch.Generator):
        unknown = set(cfg.mutations) - set(MUTATIONS)
        if unknown:
            raise ConfigError(f"unknown mutations {sorted(unknown)}; choose from {', '.join(MUTATIONS)}")
        if cfg.classes or cfg.ema:
            raise ConfigError("E-GAN trains an unconditional generator without a moving average: "
                              "model.classes=[] and model.ema=0")
        super().__init__(cfg, source, g)
        self.population = [self.snapshot()] * cfg.parents

    def snapshot(self) -> tuple[dict, dict]:
        """The generator's weights and its optimiser's state, as a child carries them."""
        return copy.deepcopy(self.net_g.state_dict()), copy.deepcopy(self.opt_g.state_dict())

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
                children.append(Child(name, p, *self.snapshot(), loss.item(), quality, diversity,
                                      quality + self.cfg.gamma * diversity))
        return children

    def step(self) -> dict[str, float]:
        batch = self.cfg.batch_size
        for _ in range(self.cfg.d_steps):
            loss_d = self.d_step(self.source.batch(batch, self.g, self.device), self.population_fakes(batch)).item()
        children = self.make_children(self.source.batch(batch, self.g, self.device), self.z(batch))
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

    def state(self) -> dict:
        return super().state() | {"population": self.population}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.population = state["population"]
