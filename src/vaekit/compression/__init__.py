"""Image compression with vaekit models: ``.vkc`` files.

Lossy: a learned transform codec (``vaekit.models.codec``), its quantised latents coded
with ``constriction``'s ANS coder. Lossless: bits-back coding of binary images with a VAE.
Modules: ``container`` (the file format), ``identity`` (which model wrote a file),
``entropy`` (ANS coding of latent grids), ``api`` (compress / decompress), ``lossless``
(the bits-back entry), ``images`` (PNG files and folders for the CLI).
"""

from vaekit.compression.api import compress, compress_each, decompress, decompress_many
from vaekit.compression.container import FORMAT_VERSION, MAGIC, Header, pack, unpack
from vaekit.compression.identity import model_identity

__all__ = ["FORMAT_VERSION", "MAGIC", "Header", "compress", "compress_each", "decompress", "decompress_many",
           "model_identity", "pack", "unpack"]
