"""Neural audio codec parts: SEANet encoder/decoder, residual VQ, spectral losses, code priors."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any


def config_json(cfg: Any, later: tuple[str, ...]) -> dict:
    """A config dataclass as JSON, leaving out the `later` fields (added after the first
    release) where they hold their defaults: an older model's JSON, and so its content
    hash (the model id its files carry), stay the same."""
    defaults = {f.name: f.default for f in fields(cfg)}
    return {k: v for k, v in asdict(cfg).items() if not (k in later and v == defaults[k])}
