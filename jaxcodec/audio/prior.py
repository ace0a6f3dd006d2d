"""Learned priors over RVQ codes, used for the rate during training and to code files.

Stored as integer counts, so the integer tables (``jaxcodec.entropy.tables``) are the same
on every machine. Two levels, chosen per file by which codes cheaper:

- ``unigram``: one categorical per codebook (stage);
- ``depth``: codebook q given the code its predecessor q-1 chose in the same frame: the
  observed pair counts (kept sparse: a dense table would be stages x K x K) mixed with the
  unigram (back-off), so codebooks can be decoded one after another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jaxcodec.entropy.models import Categorical
from jaxcodec.entropy.tables import CodingTables

CATEGORICAL = Categorical()  # the family member that turns the counts into the coder's tables


@dataclass
class CodePrior:
    unigram: np.ndarray  # int64 [stages, K]
    pair_keys: np.ndarray  # int64, sorted: (q * K + previous code) * K + code, for q >= 1
    pair_counts: np.ndarray  # int64, counts of those pairs
    backoff: int = 8  # pseudo-counts of the unigram mixed into each context row
    _rows: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)  # (stage, context) -> freqs

    @property
    def stages(self) -> int:
        return int(self.unigram.shape[0])

    @property
    def codebook_size(self) -> int:
        return int(self.unigram.shape[1])

    @staticmethod
    def fit(codes: np.ndarray, codebook_size: int) -> CodePrior:
        """Counts from codes [..., stages] (all stages active)."""
        c = np.asarray(codes).reshape(-1, codes.shape[-1])
        stages = c.shape[1]
        uni = np.stack([np.bincount(c[:, q], minlength=codebook_size) for q in range(stages)]).astype(np.int64)
        k = np.int64(codebook_size)
        keys = np.concatenate([(q * k + c[:, q - 1]) * k + c[:, q] for q in range(1, stages)] or [np.zeros(0, np.int64)])
        keys, counts = np.unique(keys, return_counts=True)
        return CodePrior(uni, keys.astype(np.int64), counts.astype(np.int64))

    def pair_rows(self, q: int, contexts: np.ndarray) -> np.ndarray:
        """Dense counts [len(contexts), K] of stage q's codes after each previous code."""
        k = self.codebook_size
        out = np.zeros((len(contexts), k), np.int64)
        lo = np.searchsorted(self.pair_keys, (q * k + np.asarray(contexts, np.int64)) * k)
        hi = np.searchsorted(self.pair_keys, (q * k + np.asarray(contexts, np.int64) + 1) * k)
        for i, (a, b) in enumerate(zip(lo, hi)):
            out[i, self.pair_keys[a:b] % k] = self.pair_counts[a:b]
        return out

    # -- integer pmfs ---------------------------------------------------------------------

    def _unigram_weights(self, stages: int) -> np.ndarray:
        """Add-one smoothed counts of the first `stages` codebooks."""
        return self.unigram[:stages] + 1

    def unigram_tables(self, stages: int) -> CodingTables:
        return CATEGORICAL.tables(self._unigram_weights(stages))

    def depth_tables(self, q: int, contexts: np.ndarray) -> CodingTables:
        """One table per context (the previous stage's code) for stage q >= 1.

        Each (stage, context) row is a fixed function of the counts, so quantized rows are
        cached: a long file or a second file pays only for contexts not seen before.
        """
        contexts = np.asarray(contexts, np.int64)
        missing = [int(a) for a in contexts if (q, int(a)) not in self._rows]
        if missing:
            u = self._unigram_weights(q + 1)[q].astype(np.float64)
            rows = self.pair_rows(q, np.asarray(missing)).astype(np.float64)
            # back-off: the unigram with `backoff` pseudo-counts in total (exact in float64)
            freqs = CATEGORICAL.tables(rows * u.sum() + self.backoff * u[None, :]).freqs
            self._rows.update({(q, a): f for a, f in zip(missing, freqs)})
        freqs = np.stack([self._rows[(q, int(a))] for a in contexts])
        return CodingTables(freqs, 0, self.codebook_size, escape=False)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"prior_unigram": self.unigram, "prior_pair_keys": self.pair_keys, "prior_pair_counts": self.pair_counts}

    @staticmethod
    def from_arrays(d: dict[str, np.ndarray]) -> CodePrior:
        return CodePrior(np.asarray(d["prior_unigram"], np.int64), np.asarray(d["prior_pair_keys"], np.int64),
                         np.asarray(d["prior_pair_counts"], np.int64))
