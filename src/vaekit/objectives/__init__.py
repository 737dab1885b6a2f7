"""The training objective beyond the bound itself: KL schedules and free bits, the latent
regularizers that replace beta * KL (capacity, beta-TCVAE, FactorVAE) and the image terms
that sharpen reconstructions (SSIM, perceptual). Every term is an ``ObjectiveTerm``."""

from vaekit.objectives.image_terms import PerceptualTerm, ReconstructionTerm, SSIMTerm, build_recon_term
from vaekit.objectives.regularizers import BetaTCVAE, CapacityKL, FactorVAE, LatentRegularizer, build_regularizer
from vaekit.objectives.schedules import KLSchedule, free_bits_kl
from vaekit.objectives.terms import ObjectiveTerm

__all__ = ["BetaTCVAE", "CapacityKL", "FactorVAE", "KLSchedule", "LatentRegularizer", "ObjectiveTerm",
           "PerceptualTerm", "ReconstructionTerm", "SSIMTerm", "build_recon_term", "build_regularizer",
           "free_bits_kl"]
