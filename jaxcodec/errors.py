"""Errors that jaxcodec raises for bad input, so callers can catch them by kind."""


class BitstreamError(ValueError):
    """A file or coded stream is truncated, corrupted, foreign or of an unsupported kind."""


class InputError(ValueError):
    """Media or arguments a codec cannot work with (missing file, empty video, ...)."""
