"""Codec registry: every .jxc file names its codec, and decoding looks it up here.

A codec module calls ``register`` at import time with functions that describe a container
(for ``jaxcodec info``) and decode it to an output file. ``load_codecs`` imports the
built-in codec modules so the registry is complete before a file is read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaxcodec.container import Container

_BUILTIN = ("jaxcodec.codecs.bytes_order0", "jaxcodec.codecs.video_inr", "jaxcodec.codecs.audio_rvq")


@dataclass(frozen=True)
class CodecEntry:
    id: str
    summary: str
    describe: Callable[[Container], dict[str, Any]]
    decode_to: Callable[..., str]  # (container, output path, **options) -> what was written
    evaluate: Callable[..., dict[str, Any]] | None = None  # (container, source path, **options)


_REGISTRY: dict[str, CodecEntry] = {}


def register(entry: CodecEntry) -> None:
    _REGISTRY[entry.id] = entry


def load_codecs() -> dict[str, CodecEntry]:
    """All known codecs by id (imports the built-in codec modules on first use)."""
    for module in _BUILTIN:
        importlib.import_module(module)
    return dict(_REGISTRY)
