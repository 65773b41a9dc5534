"""Generate (or check) the JSON Schemas of the common records and signed bodies, and the data
dictionary, from the proto descriptors.

``python -m gateway.tools.jsonschema docs/schema`` writes ``docs/schema/<stem>.schema.json`` (one
self-contained draft 2020-12 file per message of ``schema_terms.ROOTS``, see ``protoschema``) and
``docs/data-dictionary.md`` beside the folder (see ``datadict``). ``--check`` writes nothing and
fails on any difference from the files on disk.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.tools import schema_terms as terms
from gateway.tools.datadict import render_dictionary
from gateway.tools.protoschema import message, proto_comments, render, root_schema

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Key of the data dictionary in ``generate``'s result; it is written beside the schema folder.
DICTIONARY = "../data-dictionary.md"


def generate(proto_root: Path) -> dict[str, str]:
    """File name → text of every schema file, and ``DICTIONARY`` → the data dictionary."""
    comments = proto_comments(proto_root)
    files = {
        f"{stem}.schema.json": render(root_schema(stem, message(short), comments))
        for stem, short in terms.ROOTS.items()
    }
    files[DICTIONARY] = render_dictionary(comments)
    return files


def _target(schema_dir: Path, name: str) -> Path:
    return (schema_dir / name).resolve() if name == DICTIONARY else schema_dir / name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("schema_dir", type=Path, help="folder of the *.schema.json files")
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    parser.add_argument("--proto-root", type=Path, default=REPO_ROOT / "proto")
    ns = parser.parse_args(argv)
    schema_dir: Path = ns.schema_dir
    files = generate(ns.proto_root.resolve())
    existing = {p.name for p in schema_dir.glob("*.schema.json")} if schema_dir.is_dir() else set()
    if ns.check:
        problems = [f"not generated: {schema_dir / n}" for n in sorted(existing - files.keys())]
        for name, text in files.items():
            path = _target(schema_dir, name)
            if not path.is_file():
                problems.append(f"missing: {path}")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(f"stale: {path}")
        if problems:
            print(
                "the JSON Schemas or the data dictionary are out of date; run"
                f" `python -m gateway.tools.jsonschema {schema_dir}`:",
                *problems,
                sep="\n  ",
            )
            return 1
        print(f"JSON Schemas and data dictionary are up to date ({len(files)} files)")
        return 0
    schema_dir.mkdir(parents=True, exist_ok=True)
    for stale in existing - files.keys():
        (schema_dir / stale).unlink()
    for name, text in files.items():
        _target(schema_dir, name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files ({schema_dir}, {_target(schema_dir, DICTIONARY)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
