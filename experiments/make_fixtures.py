"""Rebuild the checked-in .jxc fixtures in tests/data (only when the format changes on purpose:
old fixtures must keep decoding, so add new ones rather than replacing them)."""

from jaxcodec.fixtures import FIXTURE_DIR, make_fixtures

if __name__ == "__main__":
    for name, info in make_fixtures().items():
        print(f"{FIXTURE_DIR / name}.jxc: {info}")
