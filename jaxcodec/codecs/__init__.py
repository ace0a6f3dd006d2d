"""Codec registry: every .jxc file names its codec, and the CLI asks the registry for all
a codec does.

A codec module calls ``register`` at import time with a ``CodecEntry``: how to describe,
decode and evaluate a container, and, where it has them, its encode and train commands
(an argument group, an options dataclass built from the parsed flags, and a function).
``cli.py`` holds no codec-specific branch: adding a codec means adding one module to
``_BUILTIN`` (and its tests).

Every call that reads a file goes through ``decode_boundary``, so an unforeseen
exception from a forged header ends as a ``BitstreamError`` instead of a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from jaxcodec.container import Container
from jaxcodec.errors import BitstreamError, InputError

_BUILTIN = ("jaxcodec.codecs.bytes_order0", "jaxcodec.codecs.video_inr", "jaxcodec.codecs.audio_rvq",
            "jaxcodec.codecs.image_ls")
T = TypeVar("T")


class Progress(Protocol):
    """What a long-running command reports to (the CLI passes a progress bar)."""

    def step(self, step: int, total: int) -> None: ...

    def log(self, record: dict[str, Any]) -> None: ...

    def note(self, text: str) -> None: ...


@dataclass(frozen=True)
class Command:
    """A CLI command of a codec: its flags, and what it does with them.

    ``add_args(group)`` declares the flags; ``run(args, progress)`` returns the message
    the CLI prints. Input and output paths live in ``args`` (``input``/``output`` for
    encode, ``data``/``output`` for train) and were checked by the CLI before the call.
    """

    add_args: Callable[[argparse._ArgumentGroup], None]
    run: Callable[[argparse.Namespace, Progress], str]


@dataclass(frozen=True)
class CodecEntry:
    id: str
    summary: str
    describe: Callable[[Container], dict[str, Any]]
    decode_to: Callable[[Container, Path, argparse.Namespace], str]  # -> what was written
    evaluate: Callable[[Container, Path, argparse.Namespace], dict[str, Any]] | None = None
    media: str | None = None  # the media kind ('video', 'audio', 'image') that `encode --codec auto` sends here
    encode: Command | None = None
    train: Command | None = None  # `jaxcodec train <train_kind>`
    train_kind: str | None = None
    add_decode_args: Callable[[argparse._ArgumentGroup], None] | None = None  # decode and eval flags


_REGISTRY: dict[str, CodecEntry] = {}


def register(entry: CodecEntry) -> None:
    _REGISTRY[entry.id] = entry


def load_codecs() -> dict[str, CodecEntry]:
    """All known codecs by id (imports the built-in codec modules on first use)."""
    for module in _BUILTIN:
        importlib.import_module(module)
    return dict(_REGISTRY)


def options_from_args(cls: type[T], args: argparse.Namespace) -> T:
    """An options dataclass from parsed flags whose dest names match its fields."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})


_UNFORESEEN = (LookupError, TypeError, ValueError, ArithmeticError, RecursionError, AttributeError)


def decode_boundary(codec: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Turn any unforeseen exception of a decoding function into a BitstreamError.

    Header fields are validated where they are read (naming the field); this is the net
    below that, so a forged file never ends in a traceback.
    """

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> T:
            try:
                return fn(*args, **kwargs)
            except (BitstreamError, InputError):
                raise
            except _UNFORESEEN as exc:
                raise BitstreamError(f"{codec} file is damaged or forged: {type(exc).__name__}: {exc}") from None

        return guarded

    return wrap
