"""A model's identity: which model wrote a ``.vkc`` file.

The first 8 bytes of the sha256 of the model's config (canonical JSON) and of its tensors
(names and bytes, sorted by name). A file decoded with any other model — another run, the
same run retrained, another lambda — is refused with one line instead of decoding to
garbage. 64 bits make an accidental match between two models negligible.
"""

from __future__ import annotations

import hashlib
import json

import torch

from vaekit.compression.container import IDENTITY_BYTES
from vaekit.models import Model


def model_identity(model: Model) -> bytes:
    """The ``IDENTITY_BYTES``-byte identity of ``model`` (config + weights)."""
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    state = model.state_dict()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.digest()[:IDENTITY_BYTES]
