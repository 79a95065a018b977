"""The networks: generators (registry + builder), the PatchGAN discriminator, encoder weights.

Everything here imports torch; segmentation-models-pytorch is imported only when an
``smp-unet`` generator is built.

Example:
    >>> from geop2p.models import build_generator, build_discriminator
    >>> g = build_generator({"architecture": "pix2pix-unet", "in_channels": 3, "out_channels": 1,
    ...                      "params": {"ngf": 8, "num_downs": 5}})
    >>> d = build_discriminator(3 + 1, ndf=8)
"""

from geop2p.models.discriminator import PatchDiscriminator, build_discriminator, receptive_field
from geop2p.models.encoder_weights import adapt_first_conv, load_encoder_weights, read_weights_file
from geop2p.models.generators import GENERATORS, build_generator, required_divisor, resolve_generator_spec
from geop2p.models.init import init_pix2pix_weights
from geop2p.models.input_size import check_input_size, padded_size
from geop2p.models.linear import LinearGenerator
from geop2p.models.norm import NORMS
from geop2p.models.pix2pix_unet import Pix2PixUnet
from geop2p.models.bundle import ModelBundle, load_bundle, read_bundle, save_bundle
from geop2p.models.smp_unet import SmpUnetGenerator, check_encoder_name, encoder_names

__all__ = [
    "GENERATORS",
    "NORMS",
    "LinearGenerator",
    "ModelBundle",
    "PatchDiscriminator",
    "Pix2PixUnet",
    "SmpUnetGenerator",
    "adapt_first_conv",
    "build_discriminator",
    "build_generator",
    "check_encoder_name",
    "check_input_size",
    "encoder_names",
    "init_pix2pix_weights",
    "load_bundle",
    "load_encoder_weights",
    "padded_size",
    "read_bundle",
    "read_weights_file",
    "receptive_field",
    "required_divisor",
    "resolve_generator_spec",
    "save_bundle",
]
