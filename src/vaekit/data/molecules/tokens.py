"""Tokenizers for molecules and the vocabulary a sequence VAE is trained with.

Three tokenisations, chosen by name (``get_tokenizer``):

- ``selfies``: SELFIES symbols (Krenn et al. 2020) through the ``selfies``
  package. Every sequence of SELFIES symbols decodes to a valid molecule, so a model that
  emits them never generates an invalid structure.
- ``smiles`` (the default, ``DEFAULT_TOKENS``): SMILES split by the regular expression of
  Schwaller et al. 2019, which keeps bracket atoms (``[nH]``, ``[C@@H]``, ``[N+]``),
  two-letter elements (``Cl``, ``Br``) and two-digit ring bonds (``%10``) as one token each,
  so the model never has to spell them.
- ``kekule``: the same SMILES tokens, of the molecule written in its Kekulé form (``C1=CC=CC=C1``
  for benzene, no aromatic lower-case atoms). Every bond is then spelled out, so whether a
  string is a molecule is decided by its syntax and each atom's valence alone, which the
  decoding grammar can hold (``vaekit.data.molecules.grammar``); aromatic SMILES also need the
  ring's electrons to pair up, which no rule on a prefix can see. The strings are longer.

A ``Vocabulary`` maps tokens to ids with three special tokens in front (pad 0, bos 1,
eos 2). It is built from the training set, stored as a plain list in the run's JSON
config (never pickled), and refuses a token it does not know with one line naming the
token and the molecule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vaekit.errors import VaekitError
from vaekit.extras import require_chem

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD, BOS, EOS)
TOKENIZERS = ("selfies", "smiles", "kekule")
#: The tokens a molecule source is read as unless ``tokens`` is set: SMILES, because a model's
#: samples should resemble its training molecules, and SMILES samples do so far better than
#: SELFIES samples trained alike (Skinnider, Nature Machine Intelligence 2024); an invalid
#: SMILES is simply dropped, where SELFIES spells every draw as some molecule, however
#: unlike the data (docs/benchmarks/molecules.md).
DEFAULT_TOKENS = "smiles"

# Schwaller et al. 2019 ("Molecular Transformer"), the usual SMILES tokenizer pattern.
SMILES_PATTERN = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%\d{2}|\d)"
)


class Tokenizer(Protocol):
    """Turns a SMILES string into tokens and tokens back into a SMILES string."""

    name: str

    def tokenize(self, smiles: str) -> list[str]: ...

    def detokenize(self, tokens: Sequence[str]) -> str: ...


class SmilesTokenizer:
    """SMILES characters, with multi-character atoms and ring bonds kept whole."""

    name = "smiles"

    def tokenize(self, smiles: str) -> list[str]:
        tokens = SMILES_PATTERN.findall(smiles)
        if "".join(tokens) != smiles:
            joined = "".join(tokens)
            at = next((i for i, (a, b) in enumerate(zip(smiles, joined, strict=False)) if a != b), len(joined))
            raise VaekitError(f"SMILES '{smiles}': cannot tokenize the character '{smiles[at]}' at position {at + 1}")
        return tokens

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)


class KekuleTokenizer(SmilesTokenizer):
    """SMILES tokens of the molecule's Kekulé form (the input's atom order kept, so a randomised
    SMILES stays randomised); an invalid SMILES is a one-line error."""

    name = "kekule"

    def tokenize(self, smiles: str) -> list[str]:
        from vaekit.data.molecules.rdkit import kekule

        written = kekule(smiles)
        if written is None:
            raise VaekitError(f"SMILES '{smiles}': RDKit cannot write it in Kekulé form")
        return super().tokenize(written)


class SelfiesTokenizer:
    """SELFIES symbols: any sequence of them decodes to a valid molecule (possibly empty)."""

    name = "selfies"

    def __init__(self) -> None:
        self._sf = require_chem("selfies")

    def tokenize(self, smiles: str) -> list[str]:
        try:
            encoded = self._sf.encoder(smiles)
        except self._sf.EncoderError as e:
            raise VaekitError(f"SMILES '{smiles}': SELFIES cannot encode it ({str(e).splitlines()[0]})") from None
        return list(self._sf.split_selfies(encoded))

    def detokenize(self, tokens: Sequence[str]) -> str:
        return self._sf.decoder("".join(tokens))


def get_tokenizer(name: str) -> Tokenizer:
    """The tokenizer called ``name`` (one of ``TOKENIZERS``)."""
    if name == "selfies":
        return SelfiesTokenizer()
    if name == "smiles":
        return SmilesTokenizer()
    if name == "kekule":
        return KekuleTokenizer()
    raise VaekitError(f"tokens: '{name}' is not one of {', '.join(TOKENIZERS)}")


@dataclass
class Vocabulary:
    """Token <-> id for one tokenizer; ids 0, 1, 2 are pad, bos and eos.

    Encoded sequences are ``[bos, t1, ..., tk, eos]``; what follows eos is padding, which
    the model's likelihood masks out.
    """

    tokens: list[str]
    tokenizer: str = "selfies"

    def __post_init__(self) -> None:
        if tuple(self.tokens[:3]) != SPECIAL_TOKENS:
            raise VaekitError(f"vocabulary: must start with {', '.join(SPECIAL_TOKENS)}, got {self.tokens[:3]}")
        if len(set(self.tokens)) != len(self.tokens):
            raise VaekitError("vocabulary: tokens must be unique")
        self._index = {t: i for i, t in enumerate(self.tokens)}

    pad_id, bos_id, eos_id = 0, 1, 2

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], tokenizer: str) -> Vocabulary:
        """The tokens that occur in ``sequences`` (the training set), sorted so that the same
        data always gives the same ids, after the special tokens."""
        seen: set[str] = set()
        for tokens in sequences:
            seen.update(tokens)
        clash = seen & set(SPECIAL_TOKENS)
        if clash:
            raise VaekitError(f"vocabulary: the data contains the reserved token(s) {sorted(clash)}")
        return cls([*SPECIAL_TOKENS, *sorted(seen)], tokenizer)

    def encode(self, tokens: Sequence[str], molecule: str = "") -> list[int]:
        """``[bos, ids..., eos]``; a token outside the vocabulary is a one-line error."""
        ids = [self.bos_id]
        for token in tokens:
            i = self._index.get(token)
            if i is None or i < len(SPECIAL_TOKENS):
                where = f" in molecule '{molecule}'" if molecule else ""
                raise VaekitError(f"unknown token '{token}'{where}: not in the {self.tokenizer} vocabulary of "
                                  f"{len(self) - len(SPECIAL_TOKENS)} tokens this model was trained with")
            ids.append(i)
        ids.append(self.eos_id)
        return ids

    def knows(self, tokens: Sequence[str]) -> bool:
        return all(self._index.get(t, 0) >= len(SPECIAL_TOKENS) for t in tokens)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of one encoded sequence: bos and padding skipped, stopping at eos."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i >= len(SPECIAL_TOKENS):
                out.append(self.tokens[i])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": list(self.tokens), "tokenizer": self.tokenizer}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Vocabulary:
        return cls(list(d["tokens"]), d.get("tokenizer", "selfies"))
