"""Rebuild the checked-in .jxc fixtures in tests/data (only when the format changes on purpose:
old fixtures must keep decoding, so add new ones rather than replacing them).

    python experiments/make_fixtures.py image      # only the named fixtures
"""

import sys

from jaxcodec.fixtures import FIXTURE_DIR, NAMES, make_fixtures

if __name__ == "__main__":
    for name, info in make_fixtures(names=tuple(sys.argv[1:]) or NAMES).items():
        print(f"{FIXTURE_DIR / name}.jxc: {info}")
