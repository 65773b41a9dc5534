"""The cross-record checks of a Publish batch, against what the database holds and what the batch
has accepted so far: the methodology is known (by its adapter's reference), a PV project's
capacity is within the methodology's maximum, the project is known and registered, monitoring is
inside crediting, the issuance id is new, and the serials overlap no issuance.

``KnownRecords`` is that view of the batch (read from the records store, a batch's issuances
prefetched in a few statements); ``RecordChecks`` checks one envelope's records against it and
adds them to it only when all of them passed.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field

from yrd.interop.v1 import records_pb2

from adapters.base import CommonRecord
from adapters.quantities import capacity_within
from adapters.registry import AdapterRegistry
from gateway import errors
from gateway.storage.records import MethodologyColumns, RecordsStore, SerialRange

_PV = records_pb2.SCENARIO_CATEGORY_DISTRIBUTED_PV
_REGISTERED = records_pb2.PROJECT_STATUS_REGISTERED


def civil_date(value: records_pb2.CalendarDate) -> dt.date:
    """The civil date a ``CalendarDate`` names."""
    return dt.date(value.year, value.month, value.day)


@dataclass
class KnownMethodology:
    key: tuple[str, str, str]
    ref: tuple[str, str]
    category: int
    status: int
    max_capacity: records_pb2.ExactQuantity | None


@dataclass(slots=True)
class KnownProject:
    region: str
    project_id: str
    methodology_id: str
    methodology_version: str
    crediting_start: dt.date
    crediting_end: dt.date | None
    status: int

    @property
    def methodology(self) -> tuple[str, str]:
        return (self.methodology_id, self.methodology_version)


def methodology_of(row: MethodologyColumns) -> KnownMethodology:
    region, methodology_id, version, ref_id, ref_version, category, status, value, unit = row
    cap = records_pb2.ExactQuantity(value=value, unit=unit or "") if value is not None else None
    return KnownMethodology(
        (region, methodology_id, version), (ref_id, ref_version), category, status, cap
    )


@dataclass
class KnownRecords:
    """The methodologies, projects and issuances the checks know of: the stored ones (read once,
    then kept) and those the batch accepted so far."""

    store: RecordsStore
    adapters: AdapterRegistry
    region: str
    """The publishing region (its issuances are prefetched)."""
    _by_ref: dict[tuple[str, str, str], KnownMethodology | None] = field(default_factory=dict)
    _projects: dict[str, KnownProject | None] = field(default_factory=dict)
    _issuance_ids: set[str] = field(default_factory=set)
    _ranges: list[SerialRange] = field(default_factory=list)
    _existing_ids: set[str] = field(default_factory=set)
    _prefetched_ids: set[str] = field(default_factory=set)
    _db_ranges: list[SerialRange] = field(default_factory=list)
    _db_span: tuple[int, int] = (1, 0)

    def prefetch(self, records: list[CommonRecord]) -> None:
        """Read in a few statements what the checks of these records will ask of the database."""
        issuances = [r for r in records if isinstance(r, records_pb2.Issuance)]
        if not issuances:
            return
        store = self.store
        ids = sorted({i.issuance_id for i in issuances})
        self._existing_ids.update(store.existing_issuance_ids(self.region, ids))
        self._prefetched_ids.update(ids)
        low = min(i.serials.start for i in issuances)
        high = max(i.serials.end for i in issuances)
        ranges = store.ranges_meeting(self.region, low, high)
        if ranges is not None:
            # Every stored range that can meet the batch's serials, so no per-issuance probe.
            self._db_ranges = ranges
            self._db_span = (low, high)
        names = sorted({i.project for i in issuances} - self._projects.keys())
        for row in store.projects(names):
            self._projects[row[0]] = KnownProject(*row[1:])
        for name in names:
            self._projects.setdefault(name, None)

    # -- lookups shared by the checks -----------------------------------------------------------

    def methodology_by_ref(
        self, region: str, ref_id: str, ref_version: str
    ) -> KnownMethodology | None:
        key = (region, ref_id, ref_version)
        if key not in self._by_ref:
            row = self.store.methodology_by_ref(region, ref_id, ref_version)
            self._by_ref[key] = methodology_of(row) if row is not None else None
        return self._by_ref[key]

    def project(self, name: str) -> KnownProject | None:
        if name not in self._projects:
            row = self.store.project(name)
            self._projects[name] = KnownProject(*row[1:]) if row is not None else None
        return self._projects[name]

    def issuance_exists(self, region: str, issuance_id: str) -> bool:
        if issuance_id in self._issuance_ids:
            return True
        if region == self.region and issuance_id in self._prefetched_ids:
            return issuance_id in self._existing_ids
        return self.store.issuance_exists(region, issuance_id)

    def overlapping(self, region: str, start: int, end: int) -> str | None:
        """The id of an issuance whose serials overlap [start, end], if any."""
        for ranges in (self._ranges, self._db_ranges):
            i = bisect.bisect_right(ranges, (end, 2**63, "")) - 1
            if i >= 0 and ranges[i][1] >= start:
                return ranges[i][2]
        if region == self.region and self._db_span[0] <= start and end <= self._db_span[1]:
            return None  # the prefetch held every stored range that could meet [start, end]
        clash = self.store.last_range(region, end)
        return clash[2] if clash is not None and clash[1] >= start else None


class RecordChecks:
    """The records of one envelope, checked against the batch and the database; they join the
    batch's view only on commit (so a later record of a refused envelope leaves nothing)."""

    def __init__(self, batch: KnownRecords) -> None:
        self.batch = batch
        self.methodologies: list[KnownMethodology] = []
        self.projects: list[tuple[str, KnownProject]] = []
        self.issuances: list[tuple[int, int, str]] = []

    def check(self, record: CommonRecord) -> None:
        if isinstance(record, records_pb2.Methodology):
            self._methodology(record)
        elif isinstance(record, records_pb2.Project):
            self._project(record)
        else:
            self._issuance(record)

    def _find_ref(self, region: str, ref_id: str, ref_version: str) -> KnownMethodology | None:
        for m in reversed(self.methodologies):
            if m.key[0] == region and m.ref == (ref_id, ref_version):
                return m
        return self.batch.methodology_by_ref(region, ref_id, ref_version)

    def _methodology(self, m: records_pb2.Methodology) -> None:
        ref = self.batch.adapters.get(m.region).methodology_ref(m)
        holder = self._find_ref(m.region, ref.methodology_id, ref.version)
        key = (m.region, m.methodology_id, m.version)
        if holder is not None and holder.key != key:
            raise errors.RecordConflict(
                f"{ref.methodology_id} {ref.version} already names methodology "
                f"{holder.key[1]} version {holder.key[2]}"
            )
        cap = m.eligibility.max_capacity if m.eligibility.HasField("max_capacity") else None
        self.methodologies.append(
            KnownMethodology(key, (ref.methodology_id, ref.version), m.category, m.status, cap)
        )

    def _project(self, p: records_pb2.Project) -> None:
        ref = p.methodology
        meth = (
            self._find_ref(p.region, ref.methodology_id, ref.version)
            if ref.region == p.region
            else None
        )
        if meth is None:
            raise errors.MethodologyUnknown(
                f"project {p.project_id} names methodology {ref.methodology_id} {ref.version}, "
                f"which {p.region} has not published",
                metadata={"methodology_id": ref.methodology_id, "version": ref.version},
            )
        cap = meth.max_capacity
        if (
            meth.category == _PV
            and cap is not None
            and p.HasField("capacity")
            and not capacity_within(p.capacity, cap)
        ):
            raise errors.CapacityExceedsMethodology(
                f"capacity {p.capacity.value} {p.capacity.unit} exceeds the methodology's "
                f"maximum {cap.value} {cap.unit}",
                field_errors={"capacity": f"above {cap.value} {cap.unit}"},
            )
        existing = self._find_project(p.name)
        if existing is not None and existing.methodology != (ref.methodology_id, ref.version):
            raise errors.RecordConflict(f"project {p.project_id} cannot change its methodology")
        self.projects.append(
            (
                p.name,
                KnownProject(
                    p.region,
                    p.project_id,
                    ref.methodology_id,
                    ref.version,
                    civil_date(p.crediting_period.start),
                    civil_date(p.crediting_period.end)
                    if p.crediting_period.HasField("end")
                    else None,
                    p.status,
                ),
            )
        )

    def _find_project(self, name: str) -> KnownProject | None:
        for n, project in reversed(self.projects):
            if n == name:
                return project
        return self.batch.project(name)

    def _issuance(self, i: records_pb2.Issuance) -> None:
        region, issuance_id, project_name = i.region, i.issuance_id, i.project
        project = self._find_project(project_name)
        if project is None or project.region != region:
            raise errors.ProjectUnknown(
                f"issuance {issuance_id} names project {project_name}, "
                f"which {region} has not published",
                metadata={"project": project_name},
            )
        if project.status != _REGISTERED:
            status = records_pb2.ProjectStatus.Name(
                records_pb2.ProjectStatus.ValueType(project.status)
            )
            raise errors.ProjectNotRegistered(f"project {project_name} is {status}")
        period = i.monitoring_period
        start, end = civil_date(period.start), civil_date(period.end)
        if start < project.crediting_start or (
            project.crediting_end is not None and end > project.crediting_end
        ):
            raise errors.MonitoringOutsideCrediting(
                f"monitoring period {start}..{end} is not inside the crediting period "
                f"{project.crediting_start}..{project.crediting_end or ''}",
                field_errors={"monitoring_period": "outside the crediting period"},
            )
        earlier = self.issuances  # this envelope's own issuances so far (usually none)
        if any(iid == issuance_id for _, _, iid in earlier) or self.batch.issuance_exists(
            region, issuance_id
        ):
            raise errors.IssuanceExists(f"issuance {issuance_id} was accepted before")
        serials = i.serials
        s, e = serials.start, serials.end
        clash = next((iid for a, b, iid in earlier if a <= e and b >= s), None) if earlier else None
        clash = clash or self.batch.overlapping(region, s, e)
        if clash is not None:
            raise errors.SerialsOverlap(
                f"serials {s}..{e} overlap issuance {clash}", metadata={"issuance": clash}
            )
        earlier.append((s, e, issuance_id))

    def commit(self) -> None:
        """Make the envelope's records part of the batch's view."""
        b = self.batch
        for m in self.methodologies:
            b._by_ref[(m.key[0], *m.ref)] = m
        for name, project in self.projects:
            b._projects[name] = project
        for s, e, iid in self.issuances:
            b._issuance_ids.add(iid)
            bisect.insort(b._ranges, (s, e, iid))
