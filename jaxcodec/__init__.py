"""jaxcodec: learned compression in JAX, from entropy coding to neural video and audio codecs."""

__version__ = "0.1.0"
