r"""The five autoencoders, composed from one MLP block, one Encoder and one Decoder.

============  ==========================================  ==============================================
model         the code z of an image x                    what keeps the code space usable
============  ==========================================  ==============================================
``ae``        z = f(x)                                    nothing: it only has to reconstruct
``vae``       z ~ q(z|x) = N(mu(x), diag sigma^2(x))      KL(q(z|x) || N(0, I)) in the loss (the ELBO)
``cvae``      z ~ q(z|x, y); the decoder also sees y      the same KL; y carries the digit, z the style
``aae``       z = f(x)                                    a discriminator: codes must look like p(z)
``caae``      z = f(x, y); the decoder also sees y        a discriminator that also sees y: the codes
                                                          of every digit on their own must look like p(z)
============  ==========================================  ==============================================

Every model has the same interface: ``encode(x, y=None)``, ``decode(z, y=None)`` (pixel probabilities, shape
(N, 1, 28, 28)), ``sample(n, y=None)`` and ``reconstruct(x, y=None)``. They run in eval mode without gradients.
Training goes through ``loss(x, y)`` / ``training_step(x, y, optimizers)``, which :func:`aelib.fit` calls.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn

from . import checks, losses
from .checks import IMAGE_SHAPE, N_CLASSES, N_PIXELS, check_images, check_labels  # noqa: F401 (aelib.models.N_PIXELS)
from .errors import AelibError
from .networks import MLP, Decoder, Discriminator, Encoder, inference  # noqa: F401 (aelib.models.MLP)
from .priors import PRIORS, make_prior
from .recipes import ARCHITECTURE, recipe

MAX_PARAMETERS = 10 ** 9   # 4 GB of float32 weights; the default VAE has 1.1 M


@dataclass
class Config:
    """Everything needed to rebuild a model; stored in every checkpoint."""

    name: str = "vae"
    latent_dim: int = 2
    hidden_dims: tuple[int, ...] | None = None  # encoder widths, the decoder mirrors them (None: the recipe's)
    dropout: float | None = None                 # after each hidden layer, in training only (None: the recipe's)
    prior: str = "gaussian"                      # aae / caae: p(z), one of PRIORS
    label_guided: bool = False                   # aae / caae: the digit picks the prior's component
    disc_hidden_dims: tuple[int, ...] | None = None   # None: the recipe's
    beta: float = 1.0                            # vae / cvae: the KL's weight in the loss; 1 is the ELBO (notebook 08)
    free_bits: float = 0.0                       # vae / cvae: nats of KL per latent dimension that cost nothing

    def __post_init__(self):
        self.name = checks.one_of("model name", self.name.lower() if isinstance(self.name, str) else self.name,
                                  tuple(MODELS))
        self.latent_dim = checks.positive_int("latent_dim", self.latent_dim)
        defaults = recipe(self.name)          # aelib.recipes: one table of every model's defaults
        for key in ARCHITECTURE:
            if getattr(self, key) is None:
                setattr(self, key, defaults.widths(self.latent_dim) if key == "hidden_dims" else getattr(defaults, key))
        self.hidden_dims = checks.widths("hidden_dims", self.hidden_dims)
        self.disc_hidden_dims = checks.widths("disc_hidden_dims", self.disc_hidden_dims)
        self.dropout = checks.fraction("dropout", self.dropout)
        self.prior = checks.one_of("prior", self.prior, PRIORS)
        self.label_guided = checks.flag("label_guided", self.label_guided)
        if not MODELS[self.name].adversarial and (self.prior != "gaussian" or self.label_guided):
            why = {"ae": "has no prior at all (nothing shapes its codes)",
                   "vae": "uses N(0, I) and its closed-form KL", "cvae": "uses N(0, I) and its closed-form KL"}
            raise AelibError(f"prior and label_guided apply to 'aae' and 'caae' only; {self.name!r} "
                             f"{why.get(self.name, 'has no choice of prior')}")
        self.beta = checks.positive_float("beta", self.beta)
        self.free_bits = checks.nonnegative_float("free_bits", self.free_bits)
        if not MODELS[self.name].variational and (self.beta != 1.0 or self.free_bits != 0.0):
            raise AelibError(f"beta and free_bits weigh the KL term of 'vae' and 'cvae' only; {self.name!r} has no "
                             "KL term (it trains on the reconstruction alone, or with a discriminator)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden_dims"] = list(self.hidden_dims)
        d["disc_hidden_dims"] = list(self.disc_hidden_dims)
        return d


# ------------------------------------------------------------------------------------------------------- models
class AE(nn.Module):
    """The plain autoencoder: z = encoder(x), x_hat = decoder(z); trained on reconstruction alone."""

    conditional = False   # the decoder (and encoder) see the digit label
    variational = False   # the encoder outputs a distribution q(z|x) and the loss is the ELBO
    adversarial = False   # a discriminator pushes the codes towards a prior

    name = "ae"

    def __init__(self, config: Config | None = None, **kwargs):
        super().__init__()
        config = config or Config(name=self.name, **kwargs)
        if config.name != self.name:
            raise AelibError(f"config is for {config.name!r}, not {self.name!r}")
        self.config = config
        n_classes = N_CLASSES if self.conditional else 0
        code_size = 2 * config.latent_dim if self.variational else config.latent_dim
        self.encoder = Encoder(code_size, config.hidden_dims, n_classes, config.dropout)
        self.decoder = Decoder(config.latent_dim, config.hidden_dims[::-1], n_classes, config.dropout)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def label_guided(self) -> bool:
        """True for an AAE/CAAE whose prior gives each digit its own component (the digit picks it)."""
        return self.adversarial and self.config.label_guided

    @property
    def uses_labels(self) -> bool:
        """True when the model reads the digit labels: to encode and decode (conditional models) or to pick the
        prior's component (label-guided priors). Training and sampling then need them; elsewhere they are ignored."""
        return self.conditional or self.label_guided

    # --- training -------------------------------------------------------------------------------------------
    def _code(self, x, y=None) -> torch.Tensor:
        """The code the loss uses (for the VAE: a sample of q(z|x) in training, its mean in eval mode); the public,
        checked, gradient-free way to get a code is :meth:`encode`."""
        return self.encoder(x, y)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Named loss terms (batch means, nats per image); ``"loss"`` is the one to minimise."""
        logits = self.decoder(self._code(x, y), y)
        recon = -losses.bernoulli_log_likelihood(logits, x).mean()
        return {"loss": recon, "recon": recon}

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"model": _adam(self.parameters(), lr)}

    def training_step(self, x, y, optimizers) -> dict[str, torch.Tensor]:
        """One optimisation step on a batch; returns the detached loss terms."""
        terms = self.loss(x, y)
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        return {k: v.detach() for k, v in terms.items()}

    # --- inference: eval mode, no gradients, checked inputs ---------------------------------------------------
    @inference
    def encode(self, x: torch.Tensor, y=None) -> torch.Tensor:
        """The code of each image, shape (N, latent_dim) (for the VAE/CVAE: the posterior mean)."""
        x, y = self.check_inputs(x, y)
        return self._code(x, y)

    @inference
    def decode(self, z: torch.Tensor, y=None) -> torch.Tensor:
        """Pixel probabilities p(x|z) (the Bernoulli means), shape (N, 1, 28, 28)."""
        z = self.check_codes(z)
        return torch.sigmoid(self.decoder(z, self.check_labels(y, len(z))))

    @inference
    def reconstruct(self, x: torch.Tensor, y=None) -> torch.Tensor:
        """decode(encode(x)): pixel probabilities, shape (N, 1, 28, 28)."""
        x, y = self.check_inputs(x, y)
        return torch.sigmoid(self.decoder(self._code(x, y), y))

    @inference
    def sample(self, n: int, y=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """n new images: decode codes drawn from the prior, shape (n, 1, 28, 28).

        A plain AE has no prior; it decodes z ~ N(0, I), which is the point of notebook 01: such codes
        need not look like any the encoder produces, so the images are poor.
        """
        n = checks.whole("n", n, 0)
        y = self.check_labels(y, n)
        z = self.prior_sample(n, y, checks.generator("generator", generator)).to(self.device)
        return torch.sigmoid(self.decoder(z, y))

    def prior_sample(self, n: int, y=None, generator=None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator)

    # --- input checks: a clear message for every wrong shape or label -----------------------------------------
    def check_inputs(self, x, y=None):
        x = check_images(x).to(self.device, self._dtype)
        return x, self.check_labels(y, len(x))

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def check_codes(self, z) -> torch.Tensor:
        if not torch.is_tensor(z) or z.dim() != 2 or z.shape[1] != self.latent_dim:
            shape = tuple(z.shape) if torch.is_tensor(z) else type(z).__name__
            raise AelibError(f"codes z must be a tensor of shape (N, {self.latent_dim}) for this model "
                             f"(latent_dim={self.latent_dim}), got {shape}")
        if z.dtype == torch.bool or z.is_complex():
            raise AelibError(f"codes z must be numbers, got dtype {z.dtype}; use z.float()")
        if not torch.isfinite(z).all():
            raise AelibError("codes z must be finite: drop or replace the NaN / infinite entries")
        return z.to(self.device, self._dtype)

    def check_labels(self, y, n: int, required: bool | None = None):
        """Labels as an int64 tensor of shape (n,) on the model's device; None when the model ignores them."""
        required = self.conditional if required is None else required
        if y is None:
            if required:
                raise AelibError(f"{self.name!r} is conditional: pass the digit labels y (integers 0..9, one per "
                                 "image, or one int for all)")
            return None
        if not self.uses_labels:
            return None
        return check_labels(y, n).to(self.device)


class VAE(AE):
    r"""The variational autoencoder: q(z|x) = N(mu(x), diag exp(logvar(x))), trained by maximising the ELBO.

    ``build("vae", beta=4.0)`` trains on recon + beta * KL instead (the beta-VAE; Higgins et al., 2017), and
    ``free_bits=0.5`` lets each latent dimension keep 0.5 nats of KL for free (see :meth:`loss`, notebook 08).
    """

    name = "vae"
    variational = True

    def posterior(self, x, y=None) -> tuple[torch.Tensor, torch.Tensor]:
        """mu and log sigma^2 of q(z|x), each of shape (N, latent_dim)."""
        mu, logvar = self.encoder(x, y).chunk(2, dim=1)
        return mu, logvar

    def _code(self, x, y=None):
        """A sample of q(z|x) in training mode; the posterior mean mu in eval mode (encode, reconstruct)."""
        mu, logvar = self.posterior(x, y)
        return losses.reparameterize(mu, logvar) if self.training else mu

    def loss(self, x, y=None):
        r"""``recon`` + beta * sum_j max(free_bits, KL_j) (:func:`aelib.losses.free_bits_kl`): -ELBO when beta = 1 and
        free_bits = 0 (the default). ``recon`` and ``kl`` are always the true -E_q[log p(x|z)] and
        KL(q(z|x) || p(z)), batch means in nats per image; ``loss`` is what training minimises. With beta > 1, or while
        the free-bits floor is active, ``loss`` is no longer -ELBO but a looser upper bound on -log p(x) (it is at
        least recon + beta * kl); with beta < 1 it is no bound at all."""
        mu, logvar = self.posterior(x, y)
        z = losses.reparameterize(mu, logvar)            # the reparameterisation trick
        terms = losses.elbo(x, self.decoder(z, y), mu, logvar)
        recon, kl = -terms.log_likelihood.mean(), terms.kl.mean()
        cfg = self.config
        if cfg.beta == 1.0 and cfg.free_bits == 0.0:
            loss = -terms.elbo.mean()     # the same number as recon + kl; computed as before, so old runs repeat exactly
        else:
            loss = recon + cfg.beta * losses.free_bits_kl(mu, logvar, cfg.free_bits)
        return {"loss": loss, "recon": recon, "kl": kl}


class CVAE(VAE):
    """The conditional VAE: encoder q(z|x, y) and decoder p(x|z, y) both see the digit y."""

    name = "cvae"
    conditional = True


class AAE(AE):
    """The adversarial autoencoder: a deterministic encoder whose codes a discriminator compares with p(z).

    Each batch has three phases (Makhzani et al., 2016): (1) reconstruction: encoder and decoder minimise
    -log p(x|z); (2) the discriminator learns to tell prior samples (real) from codes of digits (fake);
    (3) the encoder, as the generator, learns to make its codes look real.
    """

    name = "aae"
    adversarial = True

    def __init__(self, config: Config | None = None, **kwargs):
        super().__init__(config, **kwargs)
        cfg = self.config
        self.prior = make_prior(cfg.prior, cfg.latent_dim, cfg.label_guided)
        self.discriminator = Discriminator(cfg.latent_dim, cfg.disc_hidden_dims,
                                           N_CLASSES if self.discriminator_sees_label else 0)

    @property
    def discriminator_sees_label(self) -> bool:
        """True when the discriminator judges (code, digit) pairs rather than codes alone: with a label-guided
        prior (each digit has its own component) and in the CAAE (each digit's codes must fill the whole prior)."""
        return self.uses_labels

    def prior_sample(self, n, y=None, generator=None):
        guide = y.cpu() if (y is not None and self.config.label_guided) else None
        return self.prior.sample(n, guide, generator)

    # The discriminator's Adam: half the learning rate and less momentum than the other two phases (betas (0.5, 0.9),
    # a common choice for GANs), so it cannot run ahead of the encoder and it follows the moving codes quickly; the
    # generator keeps Adam's default betas (measured: docs/results.md, "Why the models look as they do").
    DISCRIMINATOR_LR_SCALE = 0.5
    DISCRIMINATOR_BETAS = (0.5, 0.9)

    def configure_optimizers(self, lr):
        """One Adam per phase. Adam divides each gradient by its running size, so how hard a phase pushes the
        encoder is set by its learning rate, not by the size of its loss (about 150 nats for the reconstruction,
        about 1 for the generator)."""
        return {
            "autoencoder": _adam(list(self.encoder.parameters()) + list(self.decoder.parameters()), lr),
            "discriminator": _adam(self.discriminator.parameters(), lr * self.DISCRIMINATOR_LR_SCALE,
                                   self.DISCRIMINATOR_BETAS),
            "generator": _adam(self.encoder.parameters(), lr),
        }

    def loss(self, x, y=None):
        """Reconstruction term alone (the adversarial terms need their own optimisers: see training_step)."""
        return super().loss(x, y)

    def training_step(self, x, y, optimizers):
        guide = y if self.discriminator_sees_label else None   # what the discriminator sees next to each code
        # (1) reconstruction: encoder + decoder
        z = self.encoder(x, y)
        recon = -losses.bernoulli_log_likelihood(self.decoder(z, y), x).mean()
        _step(optimizers["autoencoder"], recon)
        # (2) discriminator: prior samples are "real", codes of digits are "fake"
        z_prior = self.prior_sample(len(x), y).to(x.device)
        d_loss = losses.discriminator_loss(self.discriminator(z_prior, guide),
                                           self.discriminator(z.detach(), guide))
        _step(optimizers["discriminator"], d_loss)
        # (3) generator: the encoder tries to make its codes pass as prior samples (the discriminator is frozen)
        self.discriminator.requires_grad_(False)
        try:
            g_loss = losses.generator_loss(self.discriminator(self.encoder(x, y), guide))
            _step(optimizers["generator"], g_loss)
        finally:
            self.discriminator.requires_grad_(True)
        return {"loss": recon.detach(), "recon": recon.detach(), "disc": d_loss.detach(), "gen": g_loss.detach()}


class CAAE(AAE):
    """The conditional AAE: encoder and decoder see the digit, so the code is free to hold only the style.

    Its discriminator sees the digit too. A CAAE draws a 7 by decoding z ~ p(z) with y = 7, so the codes of the
    7s on their own must fill p(z): wherever they leave a hole, the decoder has never learnt what a 7 there looks
    like. A discriminator that sees only z checks the codes of all digits pooled, which allows each digit to keep
    to its own corner; one that sees (z, y) checks q(z | y) against p(z) for every digit separately (measured:
    docs/results.md, "Why the models look as they do").
    """

    name = "caae"
    conditional = True
    # The AAE's slower discriminator made the CAAE worse, so it keeps one setting for all three optimisers (README).
    DISCRIMINATOR_LR_SCALE = 1.0
    DISCRIMINATOR_BETAS = (0.9, 0.999)


def _adam(params, lr, betas=(0.9, 0.999)):
    """Adam; the fused kernel (one call for all parameters) where the device has one: ~1.4x faster on a CPU."""
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)


def _step(optimizer, loss):
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


MODELS: dict[str, type[AE]] = {cls.name: cls for cls in (AE, VAE, CVAE, AAE, CAAE)}


def build(name: str, seed: int | None = None, **config) -> AE:
    """A new model: ``build("vae", latent_dim=20, hidden_dims=(400,))``. See :class:`Config` for the options; what
    you leave out comes from the model's recipe (:mod:`aelib.recipes`). With ``seed``, the initial weights are drawn
    from it: the same seed, the same model."""
    valid = {f.name for f in fields(Config)} - {"name"}
    unknown = set(config) - valid
    if unknown:
        raise AelibError(f"unknown option(s) {', '.join(sorted(unknown))} for build(): valid ones are "
                         f"{', '.join(sorted(valid))}")
    cfg = Config(name=name, **config)
    n = count_parameters(skeleton(cfg))
    if n > MAX_PARAMETERS:
        raise AelibError(f"this config gives a model of {n:,} parameters ({4 * n / 1e9:,.0f} GB of weights), over "
                         f"aelib's limit of {MAX_PARAMETERS:,}: choose a smaller latent_dim or smaller hidden_dims")
    if seed is not None:
        torch.manual_seed(checks.seed("seed", seed))
    return MODELS[cfg.name](cfg)


def skeleton(config: Config) -> AE:
    """The model ``config`` describes on the meta device: its parameter names and shapes, without their memory."""
    with torch.device("meta"):
        return MODELS[config.name](config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
