"""Trainable networks: the AdaIN decoder and the optional PatchGAN discriminator."""
from .adain import AdaIN, adain, adain_affine, adain_stats
from .decoder import Decoder, kaiming_init
from .discriminator import PatchDiscriminator, d_loss, g_loss

__all__ = ["AdaIN", "Decoder", "PatchDiscriminator", "adain", "adain_affine", "adain_stats", "d_loss", "g_loss", "kaiming_init"]
