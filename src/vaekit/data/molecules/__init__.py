"""Molecule files as data: SMILES sets and files, tokenizers (SMILES, SELFIES), the cached
token tensors, and the RDKit wrappers that define a valid molecule. What needs RDKit or
SELFIES imports them inside the function, so ``vaekit.data`` loads without the chem extra."""
