"""The shared body of the atheris targets (``tests/fuzz/atheris_<region>.py``): coverage-guided
fuzzing of one region's native parser, by hand or with ``make fuzz-atheris``.

A target feeds libFuzzer's inputs to the adapter's ``to_common``; anything but records or the
adapter's typed ``NativeFormatError`` is a crash libFuzzer reports (with the input saved). The
region's sample documents seed the corpus. libFuzzer's own flags pass through, e.g.
``python -m tests.fuzz.atheris_320000 -runs=100000 -max_len=65536``.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from importlib import resources
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from adapters import NativeFormatError, default_registry
    from gateway.samples import sample_documents


def fuzz_region(region: str) -> None:
    """Run libFuzzer on the region's parser until it stops (runs, time) or finds a crash."""
    adapter = default_registry.get(region)
    content_type = adapter.content_types[0]

    def one_input(data: bytes) -> None:
        with contextlib.suppress(NativeFormatError):
            adapter.to_common(content_type, data)

    argv = list(sys.argv)
    if not any(not arg.startswith("-") for arg in argv[1:]):
        # No corpus named: start from the samples, in a scratch folder libFuzzer may add to.
        corpus = Path(tempfile.mkdtemp(prefix=f"yrdgw-atheris-{region}-"))
        for i, (_, document) in enumerate(sample_documents(region)):
            (corpus / f"sample-{i}").write_bytes(document)
        # The project with identity keys, so that their fields are mutated too.
        ext = {"310000": "json", "320000": "xml", "330000": "json", "340000": "csv"}[region]
        identity = resources.files("adapters") / "samples" / f"{region}-project-identity.{ext}"
        (corpus / "sample-identity").write_bytes(identity.read_bytes())
        argv.append(str(corpus))
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
