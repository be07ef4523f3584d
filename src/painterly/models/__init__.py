"""Trainable networks: the AdaIN decoder and the optional PatchGAN discriminator."""
from .adain import adain, adain_affine
from .decoder import Decoder, kaiming_init
from .discriminator import PatchDiscriminator, d_loss, g_loss

__all__ = ["Decoder", "PatchDiscriminator", "adain", "adain_affine", "d_loss", "g_loss", "kaiming_init"]
