"""Rebuild the checked-in .jxc fixtures in tests/data (only when the format changes on purpose:
old fixtures must keep decoding, so add new ones rather than replacing them).

    python experiments/make_fixtures.py image      # only the named fixtures
"""

import argparse

from jaxcodec.fixtures import FIXTURE_DIR, NAMES, make_fixtures

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"fixtures to rebuild (default: all of {', '.join(NAMES)})")
    args = ap.parse_args()
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        ap.error(f"no fixture named {', '.join(unknown)}; the fixtures are {', '.join(NAMES)}")
    for name, info in make_fixtures(names=tuple(args.names) or NAMES).items():
        print(f"{FIXTURE_DIR / name}.jxc: {info}")
