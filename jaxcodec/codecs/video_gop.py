"""Long videos as groups of pictures (NIRVANA, Maiya et al. 2023): one network per group.

Each group of `gop` frames is fitted by its own network of the same shape, starting from
the previous group's trained weights (autoregressive initialisation: later groups need
fewer epochs), and coded as its own pair of sections, so memory depends on the group size,
not on the video's length, a range of frames decodes from the groups that hold it alone,
and a damaged group loses only its own frames.

File: the single-network `video-inr` header, plus ``gop``: ``{"size": N, "groups":
[{"frames": n, "scales": [...], "embed": {...} | null}, ...]}``; group k's sections are
``g{k}.steps`` and ``g{k}.symbols``, laid out as a single network's ``steps`` and
``symbols``. The shared ``model`` config is a full group's; a shorter last group renders
with its own frame count. Group k's view as a single-network file is `group_container`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from jaxcodec.codecs import decode_boundary
from jaxcodec.codecs import video_inr as single
from jaxcodec.container import MAX_SECTIONS, Container, check_output_size, field_dict, field_int, field_list
from jaxcodec.errors import BitstreamError, InputError
from jaxcodec.inr.models import INRConfig, stored_param_count
from jaxcodec.metrics import frame_metrics

log = logging.getLogger(__name__)
KEY = "gop"
MAX_GROUP = 1 << 16


@dataclass
class GroupStats:
    """What encoding one group measured (from the frames its decoder will render)."""

    start: int
    frames: int
    bytes: int
    psnr: float
    ms_ssim: float
    train_seconds: float


@dataclass
class GopResult:
    container: Container
    groups: list[GroupStats]
    config: INRConfig

    @property
    def frames(self) -> int:
        return sum(g.frames for g in self.groups)

    @property
    def psnr(self) -> float:
        """Mean per-frame PSNR over the video (as `frame_metrics`)."""
        return float(sum(g.psnr * g.frames for g in self.groups) / self.frames)

    @property
    def ms_ssim(self) -> float:
        return float(sum(g.ms_ssim * g.frames for g in self.groups) / self.frames)


def encode(groups: Iterable[np.ndarray], opts: single.EncodeOptions, gop: int, fps: float = 25.0,
           source: dict[str, Any] | None = None, *, later_epochs: int | None = None,
           on_group: Callable[[GroupStats], None] | None = None, on_step=None, on_log=None) -> GopResult:
    """Code frame groups [n, H, W, 3] (all `gop` frames but the last) one network each;
    group k > 0 starts from group k-1's weights and trains `later_epochs` (default: as the first)."""
    if gop < 1 or gop > MAX_GROUP:
        raise InputError(f"--gop must be 1 to {MAX_GROUP} frames")
    entries, sections, stats = [], {}, []
    full: INRConfig | None = None
    prev, geometry, start = None, None, 0
    for k, frames in enumerate(groups):
        n, h, w = frames.shape[:3]
        if geometry is None:
            geometry = (h, w)
            full = opts.for_video(gop, h, w, fps).model_config(h, w, gop)
        elif (h, w) != geometry or n > gop or stats[-1].frames != gop:
            raise InputError("groups must share one frame size, and only the last may be shorter than --gop")
        if 2 * (k + 1) > MAX_SECTIONS:
            raise InputError(f"more than {MAX_SECTIONS // 2} groups: use a larger --gop")
        cfg = full if n == gop else dataclasses.replace(full, frames=n)
        group_opts = opts if k == 0 or later_epochs is None else dataclasses.replace(opts, epochs=later_epochs)
        group_opts = dataclasses.replace(group_opts, workdir=None if opts.workdir is None else f"{opts.workdir}/g{k}")
        t0 = time.perf_counter()
        result = single.encode(frames, group_opts, fps, config=cfg, init=prev, on_step=on_step, on_log=on_log)
        seconds = time.perf_counter() - t0
        prev = result.params
        c = result.container
        entries.append({"frames": n, "scales": [x["scale"] for x in c.header["tensors"]],
                        "embed": c.header.get("embed")})
        sections[f"g{k}.steps"], sections[f"g{k}.symbols"] = c.section("steps"), c.section("symbols")
        m = frame_metrics(frames, result.reconstruction)
        stats.append(GroupStats(start, n, len(sections[f"g{k}.steps"]) + len(sections[f"g{k}.symbols"]),
                                m["psnr"], m["ms_ssim"], seconds))
        start += n
        if on_group is not None:
            on_group(stats[-1])
    if not stats:
        raise InputError("the video has no frames")
    h, w = geometry
    header = {"model": full.to_json(), "video": {"frames": start, "height": h, "width": w, "fps": fps},
              KEY: {"size": gop, "groups": entries}, "source": source or {},
              "encoder": {"model": opts.inr, "params": stored_param_count(full), "epochs": opts.epochs,
                          "later_epochs": later_epochs or opts.epochs, "lambda": opts.lam, "seed": opts.seed,
                          "prune": opts.prune, "train_seconds": round(sum(g.train_seconds for g in stats), 2)}}
    return GopResult(Container(single.CODEC_ID, header, sections), stats, full)


def is_gop(c: Container) -> bool:
    return KEY in c.header


def group_ranges(c: Container) -> list[tuple[int, int]]:
    """(first frame, frame count) of every group, checked against the header's video."""
    w = single.CODEC_ID
    gop = field_dict(c.header, KEY, w)
    size = field_int(gop, "size", 1, MAX_GROUP, w)
    groups = field_list(gop, "groups", 1, MAX_SECTIONS // 2, w)
    counts = [field_int(g if isinstance(g, dict) else {}, "frames", 1, size, w) for g in groups]
    if any(n != size for n in counts[:-1]):
        raise BitstreamError(f"{w} header: only the last group may hold fewer than {size} frames")
    video = field_dict(c.header, "video", w)
    if sum(counts) != field_int(video, "frames", 1, size * len(counts), w):
        raise BitstreamError(f"{w} header: the groups do not add up to the video's frame count")
    starts = np.cumsum([0] + counts[:-1])
    return [(int(s), n) for s, n in zip(starts, counts)]


def group_container(c: Container, k: int) -> Container:
    """Group k as a single-network file (its shapes from the shared model config); a
    damaged or missing section of that group raises BitstreamError."""
    w = single.CODEC_ID
    ranges = group_ranges(c)
    if not 0 <= k < len(ranges):
        raise BitstreamError(f"the file has no group {k}")
    entry = c.header[KEY]["groups"][k]
    model = dict(field_dict(c.header, "model", w), frames=ranges[k][1])
    try:
        cfg = INRConfig.from_json(model)
    except (TypeError, ValueError, KeyError) as exc:
        raise BitstreamError(f"{w} header field 'model' is invalid: {exc}") from None
    scales = field_list(entry, "scales", 1, 4096, w)
    _, abstract, _ = single._decoder_parts(cfg)
    if len(scales) != len(abstract):
        raise BitstreamError(f"group {k}: {len(scales)} scales for {len(abstract)} tensors")
    video = dict(field_dict(c.header, "video", w), frames=ranges[k][1])
    header = {"model": model, "video": video, "embed": entry.get("embed"),
              "tensors": [{"shape": list(x.shape), "scale": s} for x, s in zip(abstract, scales)]}
    return Container(c.codec, header, {"steps": c.section(f"g{k}.steps"), "symbols": c.section(f"g{k}.symbols")})


@decode_boundary(single.CODEC_ID)
def decode(c: Container, start: int = 0, count: int | None = None, skip_damaged: bool = False
           ) -> tuple[np.ndarray, float, list[tuple[int, int]]]:
    """Frames start..start+count-1 (default: to the end), the fps, and the (first, count)
    ranges lost to damaged groups (only with `skip_damaged`; their frames are black)."""
    ranges = group_ranges(c)
    video = field_dict(c.header, "video", single.CODEC_ID)
    total = ranges[-1][0] + ranges[-1][1]
    count = total - start if count is None else count
    if start < 0 or count < 1 or start + count > total:
        raise InputError(f"frames {start}..{start + count - 1} are outside the video's 0..{total - 1}")
    height = field_int(video, "height", 1, 1 << 14, single.CODEC_ID)
    width = field_int(video, "width", 1, 1 << 14, single.CODEC_ID)
    check_output_size(3.0 * count * height * width, sum(len(v) for v in c.sections.values()), "frames")
    out = np.zeros((count, height, width, 3), np.uint8)
    lost, fps = [], None
    for k, (s, n) in enumerate(ranges):
        lo, hi = max(s, start), min(s + n, start + count)
        if lo >= hi:
            continue
        try:
            frames, fps = single.decode(group_container(c, k))
        except BitstreamError as exc:
            if not skip_damaged:
                raise BitstreamError(f"group {k} (frames {s}..{s + n - 1}) is damaged: {exc}") from None
            log.warning("group %d (frames %d..%d) is damaged and skipped: %s", k, s, s + n - 1, exc)
            lost.append((s, n))
            continue
        out[lo - start:hi - start] = frames[lo - s:hi - s]
    if fps is None:
        raise BitstreamError("every group that holds the requested frames is damaged")
    return out, fps, lost
