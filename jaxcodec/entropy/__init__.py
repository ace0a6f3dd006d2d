"""Entropy coding: integer tables, the jitted rANS coder and entropy models."""

from jaxcodec.entropy.coder import decode, encode
from jaxcodec.entropy.tables import (
    DISTRIBUTIONS,
    MAX_ALPHABET,
    PRECISION,
    CodingTables,
    quantize_pmf,
    tables_from_distribution,
    tables_from_pmf,
)

__all__ = [
    "DISTRIBUTIONS", "MAX_ALPHABET", "PRECISION", "CodingTables", "decode", "encode",
    "quantize_pmf", "tables_from_distribution", "tables_from_pmf",
]
