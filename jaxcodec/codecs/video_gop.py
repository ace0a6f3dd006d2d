"""Long videos as groups of pictures (NIRVANA, Maiya et al. 2023): one network per group.

Each group of `gop` frames is fitted by its own network of the same shape, starting from
the previous group's trained weights (autoregressive initialisation: later groups need
fewer epochs), and coded as its own pair of sections, so memory depends on the group size,
not on the video's length, a range of frames decodes from the groups that hold it alone,
and a damaged group loses only its own frames. With `residual`, a later group is trained
for, and coded as, the differences from its predecessor's decoded weights: far fewer bits,
at the price of decoding a chain's earlier weights first (not its frames). Chains
(`encode_chains`) restart from scratch; they are independent, so devices and processes
fit them at once.

File: the single-network `video-inr` header, plus ``gop``: ``{"size": N, "groups":
[{"frames": n, "scales": [...], "embed": {...} | null, "residual": true?}, ...]}``; group
k's sections are ``g{k}.steps`` and ``g{k}.symbols``, laid out as a single network's
``steps`` and ``symbols``. The shared ``model`` config is a full group's; a shorter last
group renders with its own frame count. Group k's view as a single-network file is
`group_container`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from jaxcodec.codecs import decode_boundary
from jaxcodec.codecs import video_inr as single
from jaxcodec.container import (MAX_SECTIONS, Container, check_output_size, field_dict, field_int, field_list, pack,
                                unpack)
from jaxcodec.distributed import gather_bytes, my_share
from jaxcodec.errors import BitstreamError, InputError
from jaxcodec.inr.models import INRConfig, stored_param_count
from jaxcodec.metrics import frame_metrics

log = logging.getLogger(__name__)
KEY = "gop"
SHARE_ID = "gop-share"  # what one process hands the others: its groups, coded
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


@dataclass
class _Coded:
    """One group as its chain coded it: the header entry, the two sections, the stats."""

    index: int
    config: INRConfig  # a full group's, which every chain must agree on
    size: list[int]  # [height, width] of the frames
    entry: dict[str, Any]
    steps: bytes
    symbols: bytes
    stats: GroupStats


def matched_reference(weights: list[np.ndarray], shapes: Sequence[Sequence[int]]) -> list[np.ndarray]:
    """A predecessor's decoded weights as the reference of a network of these tensor
    shapes: zeros (absolute coding) for every tensor whose shape differs (the
    frame-dependent tensors of a shorter last group)."""
    if len(weights) != len(shapes):
        raise BitstreamError("a group's predecessor has another number of tensors")
    return [w if w.shape == tuple(s) else np.zeros(tuple(s), np.float32) for w, s in zip(weights, shapes)]


def _code_chain(first: int, groups: Iterable[np.ndarray], opts: single.EncodeOptions, gop: int, fps: float,
                later_epochs: int | None, device: jax.Device, on_group, on_step, on_log, residual: bool = False
                ) -> list[_Coded]:
    """Fit one chain's groups in order on one device: its first group from scratch, each
    later one from its predecessor's weights (`later_epochs`) and, with `residual`, coded
    as the differences from its predecessor's decoded weights."""
    out: list[_Coded] = []
    prev, weights, full = None, None, None
    with jax.default_device(device):
        for j, frames in enumerate(groups):
            k, (n, h, w) = first + j, frames.shape[:3]
            if n > gop:
                raise InputError(f"group {k} holds {n} frames, more than --gop {gop}")
            if full is None:
                full = opts.for_video(gop, h, w, fps).model_config(h, w, gop)
            cfg = full if n == gop else dataclasses.replace(full, frames=n)
            group_opts = opts if j == 0 or later_epochs is None else dataclasses.replace(opts, epochs=later_epochs)
            group_opts = dataclasses.replace(group_opts, workdir=None if opts.workdir is None
                                             else f"{opts.workdir}/g{k}")
            t0 = time.perf_counter()
            shapes = single.decoder_shapes(cfg)
            ref = matched_reference(weights, shapes) if residual and j > 0 else None
            result = single.encode(frames, group_opts, fps, config=cfg, init=prev, reference=ref, devices=[device],
                                   payload_only=True, on_step=on_step, on_log=on_log)
            seconds = time.perf_counter() - t0
            prev, weights, c = result.params, result.weights, result.container
            m = frame_metrics(frames, result.reconstruction)
            steps, symbols = c.section("steps"), c.section("symbols")
            stats = GroupStats(k * gop, n, len(steps) + len(symbols), m["psnr"], m["ms_ssim"], seconds)
            entry = {"frames": n, "scales": [x["scale"] for x in c.header["tensors"]], "embed": c.header.get("embed")}
            if ref is not None:
                entry["residual"] = True
            out.append(_Coded(k, full, [h, w], entry, steps, symbols, stats))
            if on_group is not None:
                on_group(stats)
    return out


def _pack_share(coded: list[_Coded]) -> bytes:
    header = {"groups": [{"index": x.index, "model": x.config.to_json(), "size": x.size, "entry": x.entry,
                          "stats": dataclasses.asdict(x.stats)} for x in coded]}
    sections = {f"g{x.index}.{name}": data for x in coded for name, data in (("steps", x.steps),
                                                                              ("symbols", x.symbols))}
    return pack(Container(SHARE_ID, header, sections))


def _unpack_share(data: bytes) -> list[_Coded]:
    c = unpack(data, [SHARE_ID])
    return [_Coded(g["index"], INRConfig.from_json(g["model"]), g["size"], g["entry"],
                   c.section(f"g{g['index']}.steps"), c.section(f"g{g['index']}.symbols"), GroupStats(**g["stats"]))
            for g in c.header["groups"]]


def encode(groups: Iterable[np.ndarray], opts: single.EncodeOptions, gop: int, fps: float = 25.0,
           source: dict[str, Any] | None = None, *, later_epochs: int | None = None, residual: bool = False,
           on_group: Callable[[GroupStats], None] | None = None, on_step=None, on_log=None) -> GopResult:
    """Code frame groups [n, H, W, 3] (all `gop` frames but the last) as one chain: group
    k > 0 starts from group k-1's weights and trains `later_epochs` (default: as the first);
    with `residual`, it is coded as the differences from group k-1's decoded weights."""
    return encode_chains([lambda: groups], MAX_SECTIONS // 2, opts, gop, fps, source, later_epochs=later_epochs,
                         residual=residual, on_group=on_group, on_step=on_step, on_log=on_log)


def encode_chains(chains: Sequence[Callable[[], Iterable[np.ndarray]]], per_chain: int,
                  opts: single.EncodeOptions, gop: int, fps: float = 25.0, source: dict[str, Any] | None = None, *,
                  later_epochs: int | None = None, residual: bool = False,
                  devices: Sequence[jax.Device] | None = None, on_group: Callable[[GroupStats], None] | None = None,
                  on_step=None, on_log=None) -> GopResult:
    """Code a video as independent chains of groups: `chains[c]()` opens chain c's frame
    groups, groups c*per_chain onwards (every chain but the last holds `per_chain`);
    `residual`: a chain's later groups are coded as differences from their predecessor.

    Chain c goes to process c mod P (see `jaxcodec.distributed`) and there to the next
    free one of `devices` (default: the process's own), a chain at a time per device;
    every process returns the whole result, whose bytes do not depend on P or the devices.
    """
    if gop < 1 or gop > MAX_GROUP:
        raise InputError(f"--gop must be 1 to {MAX_GROUP} frames")
    if not chains or per_chain < 1:
        raise InputError("no groups to code")
    if residual and opts.prune > 0:
        raise InputError("--residual codes weights as differences, which pruning would not keep at zero: "
                         "use --prune 0")
    devices = jax.local_devices() if devices is None else list(devices)
    todo, lock, failed = iter(my_share(chains)), threading.Lock(), threading.Event()
    alone = len(devices) == 1  # concurrent fits report whole groups only: their bars would interleave

    def report(stats: GroupStats) -> None:
        with lock:
            if on_group is not None:
                on_group(stats)

    def worker(device: jax.Device) -> list[_Coded]:
        done: list[_Coded] = []
        while not failed.is_set():
            with lock:
                c, open_chain = next(todo, (None, None))
            if open_chain is None:
                break
            try:
                coded = _code_chain(c * per_chain, open_chain(), opts, gop, fps, later_epochs, device, report,
                                    on_step if alone else None, on_log if alone else None, residual)
            except BaseException:
                failed.set()
                raise
            if len(coded) > per_chain or (not coded and c > 0):
                raise InputError(f"chain {c} holds {len(coded)} groups; each holds 1 to {per_chain}")
            done.extend(coded)
        return done

    if alone:
        coded = worker(devices[0])
    else:
        with ThreadPoolExecutor(len(devices), thread_name_prefix="chain") as pool:
            coded = [x for f in [pool.submit(worker, d) for d in devices] for x in f.result()]
    if jax.process_count() > 1:
        coded = [x for part in gather_bytes(_pack_share(coded)) for x in _unpack_share(part)]
    return _assemble(sorted(coded, key=lambda x: x.index), opts, gop, fps, source, later_epochs, len(chains),
                     residual)


def _assemble(coded: list[_Coded], opts: single.EncodeOptions, gop: int, fps: float, source: dict[str, Any] | None,
              later_epochs: int | None, chains: int, residual: bool) -> GopResult:
    """The file from every group: one group table in the header, two sections a group."""
    if not coded:
        raise InputError("the video has no frames")
    if [x.index for x in coded] != list(range(len(coded))):
        raise InputError("the chains left a gap in the video: a chain ended before its last group")
    if 2 * len(coded) > MAX_SECTIONS:
        raise InputError(f"more than {MAX_SECTIONS // 2} groups: use a larger --gop")
    first = (coded[0].config, coded[0].size)
    if any(x.stats.frames != gop for x in coded[:-1]) or any((x.config, x.size) != first for x in coded):
        raise InputError("groups must share one frame size, and only the last may be shorter than --gop")
    full = coded[0].config
    sections = {f"g{x.index}.{name}": data for x in coded for name, data in (("steps", x.steps),
                                                                              ("symbols", x.symbols))}
    frames = sum(x.stats.frames for x in coded)
    h, w = coded[0].size
    header = {"model": full.to_json(), "video": {"frames": frames, "height": h, "width": w, "fps": fps},
              KEY: {"size": gop, "groups": [x.entry for x in coded]}, "source": source or {},
              "encoder": {"model": opts.inr, "params": stored_param_count(full), "epochs": opts.epochs,
                          "later_epochs": later_epochs or opts.epochs, "chains": chains, "residual": residual,
                          "lambda": opts.rate_weight,
                          "seed": opts.seed, "prune": opts.prune}}
    return GopResult(Container(single.CODEC_ID, header, sections), [x.stats for x in coded], full)


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


def group_container(c: Container, k: int, ranges: list[tuple[int, int]] | None = None) -> Container:
    """Group k as a single-network file (its shapes from the shared model config); a
    damaged or missing section of that group raises BitstreamError. `ranges`: the file's
    `group_ranges`, when the caller has them."""
    w = single.CODEC_ID
    ranges = group_ranges(c) if ranges is None else ranges
    if not 0 <= k < len(ranges):
        raise BitstreamError(f"the file has no group {k}")
    entry = c.header[KEY]["groups"][k]
    model = dict(field_dict(c.header, "model", w), frames=ranges[k][1])
    try:
        cfg = INRConfig.from_json(model)
    except (TypeError, ValueError, KeyError) as exc:
        raise BitstreamError(f"{w} header field 'model' is invalid: {exc}") from None
    scales = field_list(entry, "scales", 1, 4096, w)
    shapes = single.decoder_shapes(cfg)
    if len(scales) != len(shapes):
        raise BitstreamError(f"group {k}: {len(scales)} scales for {len(shapes)} tensors")
    video = dict(field_dict(c.header, "video", w), frames=ranges[k][1])
    header = {"model": model, "video": video, "embed": entry.get("embed"),
              "tensors": [{"shape": list(x), "scale": s} for x, s in zip(shapes, scales)]}
    return Container(c.codec, header, {"steps": c.section(f"g{k}.steps"), "symbols": c.section(f"g{k}.symbols")})


def residual_flags(c: Container) -> list[bool]:
    """Which groups are coded as differences from their predecessor (never the first)."""
    groups = field_list(field_dict(c.header, KEY, single.CODEC_ID), "groups", 1, MAX_SECTIONS // 2, single.CODEC_ID)
    flags = [g.get("residual", False) if isinstance(g, dict) else False for g in groups]
    if any(type(f) is not bool for f in flags) or flags[0]:
        raise BitstreamError(f"{single.CODEC_ID} header: 'residual' must be true or false, and false for group 0")
    return flags


@decode_boundary(single.CODEC_ID)
def decode(c: Container, start: int = 0, count: int | None = None, skip_damaged: bool = False
           ) -> tuple[np.ndarray, float, list[tuple[int, int]]]:
    """Frames start..start+count-1 (default: to the end), the fps, and the (first, count)
    ranges lost to damaged groups (only with `skip_damaged`; their frames are black). A
    residual group needs its predecessors' weights back to its chain's first group: they
    are decoded (not rendered), and a damaged one loses the groups that depend on it."""
    ranges, residual = group_ranges(c), residual_flags(c)
    video = field_dict(c.header, "video", single.CODEC_ID)
    total = ranges[-1][0] + ranges[-1][1]
    count = total - start if count is None else count
    if start < 0 or count < 1 or start + count > total:
        raise InputError(f"frames {start}..{start + count - 1} are outside the video's 0..{total - 1}")
    height = field_int(video, "height", 1, 1 << 14, single.CODEC_ID)
    width = field_int(video, "width", 1, 1 << 14, single.CODEC_ID)
    check_output_size(3.0 * count * height * width, sum(len(v) for v in c.sections.values()), "frames")
    last: dict[str, Any] = {}  # the group whose weights were decoded last: "k", "weights"

    def weights(k: int):
        first = k
        while residual[first]:
            first -= 1
        if last and first <= last["k"] < k:
            first = last["k"] + 1
        for j in range(first, k + 1):
            s, n = ranges[j]
            try:
                group = group_container(c, j, ranges)
                ref = None
                if residual[j]:
                    ref = matched_reference(last["weights"][2], [t["shape"] for t in group.header["tensors"]])
                last.update(k=j, weights=single.decode_weights(group, ref))
            except BitstreamError as exc:
                last.clear()
                needs = "" if j == k else f"; group {k} (frames {ranges[k][0]}..) is coded against it"
                raise BitstreamError(f"group {j} (frames {s}..{s + n - 1}) is damaged: {exc}{needs}") from None
        return last["weights"]

    out = np.zeros((count, height, width, 3), np.uint8)
    lost, fps = [], None
    for k, (s, n) in enumerate(ranges):
        lo, hi = max(s, start), min(s + n, start + count)
        if lo >= hi:
            continue
        try:
            cfg, info, leaves, emb = weights(k)
        except BitstreamError as exc:
            if not skip_damaged:
                raise
            log.warning("frames %d..%d are lost: %s", s, s + n - 1, exc)
            lost.append((s, n))
            continue
        frames, fps = single.render(cfg, leaves, emb, info["height"], info["width"]), info["fps"]
        out[lo - start:hi - start] = frames[lo - s:hi - s]
    if fps is None:
        raise BitstreamError("every group that holds the requested frames is damaged")
    return out, fps, lost


@decode_boundary(single.CODEC_ID)
def describe(c: Container) -> dict[str, Any]:
    ranges = group_ranges(c)
    first = group_container(c, 0, ranges)  # checks the shared model and video fields
    cfg, info = single.parse_header(first)
    frames = ranges[-1][0] + ranges[-1][1]
    enc = c.header.get("encoder")
    chains = enc.get("chains", 1) if isinstance(enc, dict) else 1
    return {"video": f"{frames} frames of {info['width']}x{info['height']} at {info['fps']:g} fps",
            "model": single.model_summary(cfg) + " per group",
            "groups": f"{len(ranges)} of {ranges[0][1]} frames (the last {ranges[-1][1]}) in {chains} chain(s); "
                      "sections g<k>.steps and g<k>.symbols below",
            "bits per pixel": round(8 * len(pack(c)) / (frames * info["width"] * info["height"]), 5)}
