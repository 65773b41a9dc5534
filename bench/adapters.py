"""Benchmark: records/s of each region's ``to_common``, against the raw parse of the same bytes.

Run ``python -m bench.adapters`` (``--records N`` to change the batch, default 10,000 per
region). For each region it generates a batch of valid native documents of all three record kinds
(one record per JSON/XML document; Anhui as three CSV files of many rows), then measures

- ``to_common``: the adapter parsing, validating and mapping to the common schema;
- ``raw``: the bare parse of the same bytes, no mapping (``json.loads``, ``defusedxml`` parse,
  GB18030 decode + ``csv.reader``), the limit the adapter cannot beat;

and prints records/s for both and their ratio (to_common / raw), the best of ``--repeat`` runs.

Then, for foreign records (the other three regions' records in this region's format, as a native
feed delivers them), beside the region's own records:

- ``from_common``: rendering common records natively (the rendering is read back and compared,
  as delivery requires);
- ``to_common``: reading the rendered documents back (``accept_foreign=True``), with the raw
  parse of the same documents and the ratio to_common / raw.

``--samples`` prints instead the table of the 15 shared sample records in every region's format
(region × kind: how many of the other regions' records are native and convert back exactly).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import time
from collections.abc import Callable
from importlib import resources

import defusedxml.ElementTree

from adapters import CommonRecord, NotExpressibleError, RegionAdapter, default_registry
from adapters.base import same_record

SAMPLES = resources.files("adapters") / "samples"
_SHARED_SAMPLE = re.compile(r"[0-9]{6}-(methodology|project|issuance)\.(json|xml|csv)")


def _sample(name: str) -> str:
    data = (SAMPLES / name).read_bytes()
    return data.decode("gb18030" if name.endswith(".csv") else "utf-8")


def shanghai(n: int) -> list[bytes]:
    kinds = [
        json.loads(_sample(f"310000-{k}.json")) for k in ("methodology", "project", "issuance")
    ]
    docs = []
    for i in range(n):
        obj = dict(kinds[i % 3])
        if obj["record_type"] == "methodology":
            obj["methodology_no"] = f"SHCI-M-PV-{2000 + i % 100:04d}-{i % 100:02d}"
        elif obj["record_type"] == "project":
            obj["project_no"] = f"SHCI-P-2024-{i:06d}"
        else:
            obj["issuance_no"] = f"SHCI-I-2025-{i:06d}"
            obj["serial_start"] = i * 1_000_000 + 1
            obj["serial_end"] = i * 1_000_000 + 392_700
        docs.append(json.dumps(obj, ensure_ascii=False, indent=2).encode("utf-8"))
    return docs


def jiangsu(n: int) -> list[bytes]:
    kinds = [_sample(f"320000-{k}.xml") for k in ("methodology", "project", "issuance")]
    docs = []
    for i in range(n):
        text = kinds[i % 3]
        text = text.replace("JS-FFX-GF-001", f"JS-FFX-GF-{i:06d}")
        text = text.replace("JS-XM-2024-0456", f"JS-XM-2024-{i:06d}")
        text = text.replace("JS-QF-2025-0012", f"JS-QF-2025-{i:06d}")
        text = text.replace("<XLHQS>20001</XLHQS>", f"<XLHQS>{i * 1000 + 1}</XLHQS>")
        text = text.replace("<XLHZZ>20502</XLHZZ>", f"<XLHZZ>{i * 1000 + 502}</XLHZZ>")
        docs.append(text.encode("utf-8"))
    return docs


def zhejiang(n: int) -> list[bytes]:
    kinds = [
        json.loads(_sample(f"330000-{k}.json")) for k in ("methodology", "project", "issuance")
    ]
    docs = []
    for i in range(n):
        obj = json.loads(json.dumps(kinds[i % 3]))
        info = obj["dataInfo"]
        for key in ("methodologyId", "projectInfoId", "certificationId"):
            if key in info:
                info[key] = f"{1_526_163_848_812_433_408 + i:019d}"
        if "serialFrom" in info:
            info["serialFrom"] = i * 1_000_000_000 + 1
            info["serialTo"] = i * 1_000_000_000 + 309_180_000
        docs.append(json.dumps(obj, ensure_ascii=False, indent=2).encode("utf-8"))
    return docs


def anhui(n: int) -> list[bytes]:
    files = []
    for kind, count in zip(
        ("methodology", "project", "issuance"), (n // 3, n // 3, n - 2 * (n // 3)), strict=True
    ):
        header, first = _sample(f"340000-{kind}.csv").split("\r\n")[:2]
        cells = next(csv.reader([first]))
        rows = []
        for i in range(count):
            row = list(cells)
            row[1] = f"{row[1]}-{i:06d}"
            if kind == "issuance":
                row[6], row[7], row[8], row[9] = (
                    "1.5",
                    "吨",
                    str(i * 2000 + 1),
                    str(i * 2000 + 1500),
                )
            rows.append(row)
        buffer = io.StringIO(newline="")
        buffer.write(header + "\r\n")
        csv.writer(buffer, lineterminator="\r\n").writerows(rows)
        files.append(buffer.getvalue().encode("gb18030"))
    return files


def _json_raw(doc: bytes) -> int:
    json.loads(doc)
    return 1


def _xml_raw(doc: bytes) -> int:
    defusedxml.ElementTree.fromstring(doc, forbid_dtd=True)
    return 1


def _csv_raw(doc: bytes) -> int:
    return len(list(csv.reader(io.StringIO(doc.decode("gb18030"), newline="")))) - 1


REGIONS: dict[str, tuple[str, Callable[[int], list[bytes]], Callable[[bytes], int]]] = {
    "310000": ("Shanghai JSON", shanghai, _json_raw),
    "320000": ("Jiangsu XML", jiangsu, _xml_raw),
    "330000": ("Zhejiang JSON", zhejiang, _json_raw),
    "340000": ("Anhui CSV", anhui, _csv_raw),
}


def _best(repeat: int, *runs: Callable[[], int]) -> list[tuple[float, int]]:
    """The best time (and count) of each run over ``repeat`` rounds.

    The runs alternate within each round, so that on a busy machine the ratio of two runs
    compares them under the same load.
    """
    results = [(float("inf"), 0)] * len(runs)
    for _ in range(repeat):
        for index, run in enumerate(runs):
            start = time.perf_counter()
            count = run()
            elapsed = time.perf_counter() - start
            results[index] = (min(results[index][0], elapsed), count)
    return results


def _common_records(region: str, n: int) -> list[CommonRecord]:
    adapter = default_registry.get(region)
    _, generate, _ = REGIONS[region]
    records: list[CommonRecord] = []
    for doc in generate(n):
        records += adapter.to_common(adapter.content_types[0], doc)
    return records


def _rendering(
    records: list[CommonRecord], adapter: RegionAdapter, raw: Callable[[bytes], int], repeat: int
) -> str:
    """``from_common`` and ``to_common`` records/s of ``records`` in ``adapter``'s format, the raw
    parse of the same documents and the ratio to_common / raw."""
    ct = adapter.content_types[0]
    docs = [adapter.from_common(r) for r in records]

    def render() -> int:
        return len([adapter.from_common(r) for r in records])

    def read() -> int:
        return sum(len(adapter.to_common(ct, doc, accept_foreign=True)) for doc in docs)

    def bare() -> int:
        return sum(raw(doc) for doc in docs)

    [(render_time, count)] = _best(repeat, render)
    (read_time, _), (raw_time, _) = _best(repeat, read, bare)
    return (
        f"{count / render_time:>15,.0f}{count / read_time:>13,.0f}{count / raw_time:>13,.0f}"
        f"{raw_time / read_time:>8.3f}"
    )


def foreign_figures(n: int, repeat: int) -> None:
    """Own and foreign records rendered in and read from each region's format."""
    per_region = {region: _common_records(region, n) for region in REGIONS}
    print(f"\nnative rendering and reading, {n} own and {3 * n} foreign records per region")
    print("(one document per record; raw: the bare parse of the same documents)")
    print(
        f"{'region':<22}{'records':<9}{'from_common/s':>15}{'to_common/s':>13}{'raw rec/s':>13}"
        f"{'ratio':>8}"
    )
    for region, (label, _, raw) in REGIONS.items():
        adapter = default_registry.get(region)
        foreign = [r for other, rs in per_region.items() if other != region for r in rs]
        own = _rendering(per_region[region], adapter, raw, repeat)
        print(f"{region} {label:<15}{'own':<9}{own}")
        print(f"{'':<22}{'foreign':<9}{_rendering(foreign, adapter, raw, repeat)}")


def samples_table() -> int:
    """Print region × kind: the other regions' sample records native and exact in each format."""
    folder = SAMPLES
    records: list[CommonRecord] = []
    # The shared samples only (not the projects with identity keys, nor the demo pair).
    shared = (p.name for p in folder.iterdir() if _SHARED_SAMPLE.fullmatch(p.name))
    for name in sorted(shared):
        source = default_registry.get(name[:6])
        records += source.to_common(source.content_types[0], (folder / name).read_bytes())
    kinds = ("methodology", "project", "issuance")
    print(f"{len(records)} sample records; foreign ones in each region's native format:")
    print(f"{'region':<8}" + "".join(f"{kind:>26}" for kind in kinds))
    failures = 0
    for adapter in default_registry:
        cells = []
        for kind in kinds:
            foreign = [
                r
                for r in records
                if r.region != adapter.region and r.DESCRIPTOR.name.lower() == kind
            ]
            native = exact = 0
            for record in foreign:
                try:
                    data = adapter.from_common(record)
                except NotExpressibleError:
                    continue
                native += 1
                [back] = adapter.to_common(adapter.content_types[0], data, accept_foreign=True)
                exact += same_record(back, record)
            failures += len(foreign) - exact
            cells.append(f"{native}/{len(foreign)} native, {exact} exact")
        print(f"{adapter.region:<8}" + "".join(f"{cell:>26}" for cell in cells))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=10_000, help="records per region")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    parser.add_argument("--samples", action="store_true", help="print the samples table only")
    args = parser.parse_args(argv)
    if args.samples:
        return samples_table()

    print(f"to_common vs raw parse, {args.records} records per region, best of {args.repeat}")
    print(f"{'region':<22}{'to_common rec/s':>17}{'raw rec/s':>13}{'ratio':>8}")
    for region, (label, generate, raw) in REGIONS.items():
        adapter: RegionAdapter = default_registry.get(region)
        content_type = adapter.content_types[0]
        docs = generate(args.records)

        def mapped(
            docs: list[bytes] = docs, adapter: RegionAdapter = adapter, ct: str = content_type
        ) -> int:
            return sum(len(adapter.to_common(ct, doc)) for doc in docs)

        def bare(docs: list[bytes] = docs, raw: Callable[[bytes], int] = raw) -> int:
            return sum(raw(doc) for doc in docs)

        (mapped_time, mapped_count), (raw_time, raw_count) = _best(args.repeat, mapped, bare)
        assert mapped_count == raw_count == args.records
        mapped_rate = raw_count / mapped_time
        raw_rate = raw_count / raw_time
        print(
            f"{region} {label:<15}{mapped_rate:>17,.0f}{raw_rate:>13,.0f}"
            f"{mapped_rate / raw_rate:>8.3f}"
        )
    foreign_figures(args.records, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
