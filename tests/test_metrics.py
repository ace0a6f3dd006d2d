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
