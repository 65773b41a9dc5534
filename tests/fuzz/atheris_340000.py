"""atheris target: the 340000 adapter's parser (see tests/fuzz/_atheris.py)."""

from tests.fuzz._atheris import fuzz_region

if __name__ == "__main__":
    fuzz_region("340000")
