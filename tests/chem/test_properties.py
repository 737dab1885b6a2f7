"""Molecular properties against published and hand-computed values."""

import csv
import gzip
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rdkit")

from vaekit.chem.properties import (
    PLOGP_STATS,
    compute_properties,
    long_cycle_penalty,
    penalized_logp,
    property_by_name,
    property_of,
    tanimoto,
)
from vaekit.data.molecules.rdkit import to_mol
from vaekit.errors import VaekitError

# JT-VAE's three best molecules from Bayesian optimisation (Jin et al. 2018, Fig. 3 / Table 2)
JTVAE_TOP3 = {
    "ClC1=CC=C2C(C=C(C(C)=O)C(C(NC3=CC(NC(NC4=CC(C5=C(C)C=CC=C5)=CC=C4)=O)=CC=C3)=O)=C2)=C1": 5.30,
    "ClC(C(Cl)=C1)=CC=C1NC2=CC=CC=C2C(NC(NC3=C(C(NC4=C(Cl)C=CC=C4)=S)C=CC=C3)=O)=O": 4.93,
    "CC(NC1=CC(C2=CC=CC(NC(NC3=CC=CC(C4=CC(F)=CC=C4)=C3)=O)=C2)=CC=C1)=O": 4.49,
}
ZINC_FIRST = "CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1"  # row 1 of ZINC250k / chemical_vae's CSV


def test_benzene_values_are_rdkits_known_ones():
    props = compute_properties(to_mol("c1ccccc1"))
    assert props["logp"] == pytest.approx(1.6866)         # Crippen: 6 aromatic CH
    assert props["qed"] == pytest.approx(0.44263, abs=1e-5)
    assert props["sas"] == pytest.approx(1.0)             # clamped at the easy end
    # by hand: (1.6866 - 2.45710) / 1.43432 + (-1 + 3.05258) / 0.83352 + (0 + 0.04857) / 0.28602
    assert props["plogp"] == pytest.approx(-0.537183 + 2.462544 + 0.169811, abs=1e-5)


def test_zinc_first_molecule_matches_chemical_vaes_published_logp_and_sas():
    props = compute_properties(to_mol(ZINC_FIRST))
    assert props["logp"] == pytest.approx(5.0506, abs=1e-4)
    assert props["sas"] == pytest.approx(2.0840945721, abs=1e-8)


@pytest.mark.parametrize("smiles,expected", list(JTVAE_TOP3.items()))
def test_penalized_logp_reproduces_jtvae_top_molecules(smiles, expected):
    assert penalized_logp(to_mol(smiles)) == pytest.approx(expected, abs=0.005)


@pytest.mark.parametrize("smiles,penalty", [("c1ccccc1", 0), ("C1CCCCCCC1", 2), ("C1CCCCCCCCCCC1", 6),
                                            ("c1ccc2ccccc2c1", 0), ("CCO", 0)])
def test_long_cycle_penalty_counts_atoms_beyond_six_in_the_largest_ring(smiles, penalty):
    assert long_cycle_penalty(to_mol(smiles)) == penalty


def test_cyclooctane_pays_the_standardised_cycle_penalty():
    # same logP and SAS terms whatever the ring, so the difference is the cycle term alone
    mol = to_mol("C1CCCCCCC1")
    props = compute_properties(mol)
    mean, std = PLOGP_STATS["neg_cycle"]
    by_hand = ((props["logp"] - PLOGP_STATS["logp"][0]) / PLOGP_STATS["logp"][1]
               + (-props["sas"] - PLOGP_STATS["neg_sas"][0]) / PLOGP_STATS["neg_sas"][1]
               + (-2 - mean) / std)
    assert props["plogp"] == pytest.approx(by_hand)


def test_property_by_name_maps_columns_and_aliases():
    heads = ["logP", "qed", "SAS", "pIC50"]
    logp = property_by_name("logP", heads)
    assert (logp.rdkit, logp.head_index, logp.head_column, logp.sign) == ("logp", 0, "logP", 1.0)
    sas = property_by_name("sas", heads)
    assert (sas.rdkit, sas.head_index, sas.sign) == ("sas", 2, -1.0)        # minimised
    plogp = property_by_name("penalized_logp", heads)
    assert (plogp.rdkit, plogp.head_index) == ("plogp", None)               # no head column for it
    assay = property_by_name("pIC50", heads)
    assert (assay.rdkit, assay.head_index, assay.predicted) == (None, 3, True)


def test_unknown_objective_names_the_choices():
    with pytest.raises(VaekitError, match=r"objective: expected qed, logp, sas, plogp or a property-head column "
                                          r"\(logP, qed\), got 'potency'"):
        property_by_name("potency", ["logP", "qed"])
    with pytest.raises(VaekitError, match=r"expected qed, logp, sas, plogp, got 'qde'$"):
        property_by_name("qde")


def test_property_of_invalid_smiles_is_none():
    assert property_of("logp", "C1CC") is None
    assert property_of("logP", "CCO") == pytest.approx(-0.0014)


def test_tanimoto_is_one_for_the_same_molecule_and_lower_for_a_neighbour():
    assert tanimoto(to_mol("CCO"), to_mol("OCC")) == 1.0
    assert 0 < tanimoto(to_mol("c1ccccc1O"), to_mol("c1ccccc1C")) < 1


ZINC_PROPS = Path(os.environ.get("VAEKIT_DATA_DIR", "/work/shared/data")) / "zinc250k" / \
    "zinc250k_properties_rdkit.csv.gz"


@pytest.mark.skipif(not ZINC_PROPS.is_file(), reason="ZINC250k property file not present")
def test_jtvae_constants_agree_with_zinc250k_recomputed_by_rdkit():
    with gzip.open(ZINC_PROPS, "rt") as f:
        rows = list(csv.DictReader(f))
    logp = np.array([float(r["logP"]) for r in rows])
    neg_sas = -np.array([float(r["SAS"]) for r in rows])
    assert len(rows) == 249_456
    for values, key in ((logp, "logp"), (neg_sas, "neg_sas")):
        assert values.mean() == pytest.approx(PLOGP_STATS[key][0], abs=2e-3)
        assert values.std() == pytest.approx(PLOGP_STATS[key][1], abs=2e-3)
