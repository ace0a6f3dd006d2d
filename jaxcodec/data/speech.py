"""Which real speech the toolkit trains and judges its audio codec on, split by speaker.

Every voice comes from a Debian package (no hub, no network beyond the package mirror).
Whole speakers are held out: a codec is judged on voices, and languages, it never heard.
The speaker of each package is taken from its ``copyright`` file (asterisk-core-sounds:
en and es by Allison Smith, fr by June Wallack, it by Carlo Flora, ru by Maxim Topal).

Layout written by ``experiments/prepare_speech.py``::

    OUT/train/<speaker>/<language>-<prompt>.flac      training speakers
    OUT/eval/<speaker>/<language>-<prompt>.flac       held-out speakers (the benchmark)
    OUT/eval-seen/<speaker>/...                       10% of the training speakers' prompts
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True)
class SpeechSource:
    package: str  # Debian package
    speaker: str  # one folder per voice
    language: str
    suffix: str  # prompt files inside the package
    wideband: bool  # 16 kHz recordings; narrowband (8 kHz) ones only train


SOURCES: tuple[SpeechSource, ...] = (
    SpeechSource("asterisk-core-sounds-en-g722", "allison-smith", "en", ".g722", True),
    SpeechSource("asterisk-core-sounds-es-g722", "allison-smith", "es", ".g722", True),
    SpeechSource("asterisk-core-sounds-it-g722", "carlo-flora", "it", ".g722", True),
    SpeechSource("asterisk-core-sounds-fr-g722", "june-wallack", "fr", ".g722", True),
    SpeechSource("asterisk-core-sounds-ru-g722", "maxim-topal", "ru", ".g722", True),
    SpeechSource("asterisk-prompt-it-menardi-wav", "it-menardi", "it", ".wav", False),
    SpeechSource("asterisk-prompt-es-co", "es-co", "es", ".gsm", False),
)
# Two voices in two languages no training prompt is in.
HELD_OUT_SPEAKERS: tuple[str, ...] = ("june-wallack", "maxim-topal")
SEEN_EVAL_PERCENT = 10


def split_of(source: SpeechSource, prompt: str, held_out: tuple[str, ...] = HELD_OUT_SPEAKERS) -> str:
    """'eval' for every prompt of a held-out speaker; otherwise 'eval-seen' for a fixed
    hash-chosen tenth of the prompts (wideband only) and 'train' for the rest."""
    if source.speaker in held_out:
        return "eval"
    seen = zlib.crc32(f"{source.language}/{prompt}".encode()) % 100 < SEEN_EVAL_PERCENT
    return "eval-seen" if seen and source.wideband else "train"


def destination(source: SpeechSource, member: str, held_out: tuple[str, ...] = HELD_OUT_SPEAKERS) -> PurePosixPath:
    """Where a package member (its path inside the package) goes, relative to OUT."""
    parts = PurePosixPath(member).with_suffix("").parts
    if "sounds" in parts:  # .../sounds/<voice folder>/digits/1 -> digits_1
        parts = parts[parts.index("sounds") + 2:]
    prompt = "_".join(parts[-3:]).replace(" ", "_")
    return PurePosixPath(split_of(source, prompt, held_out), source.speaker, f"{source.language}-{prompt}.flac")


def speakers_of(split: str, held_out: tuple[str, ...] = HELD_OUT_SPEAKERS) -> set[str]:
    """The speakers a split can hold."""
    if split == "eval":
        return {s.speaker for s in SOURCES if s.speaker in held_out}
    return {s.speaker for s in SOURCES if s.speaker not in held_out}
