"""Incidents become cases 立案与派遣: a batch of ``incident.reported`` in a few set-based statements.

Nothing here commits (the consumer runner or the caller's transaction does). Per batch:
one advisory-lock statement (the sorted union of the batch's duplicate-check keys), one
query for every report's duplicate candidates and the incidents that have a case already,
one multi-row insert each of cases, timeline rows and outbox rows. 不提交；每批：一次加锁、
一次候选查询、案件 / 时间线 / 发件箱各一条多行插入。

:func:`handle_incidents` is the consumer's path; :func:`handle_incident` is a batch of one.
批量立案（消费者路径）；:func:`handle_incident` 即一条的批量处理。
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.case_model import CaseState
from services.dispatch.duplicates import (
    DuplicateMatch,
    OpenCase,
    Report,
    find_duplicate,
    lock_cell,
    lock_cells,
    lock_keys,
    search_box,
)
from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.models import cases
from services.dispatch.new_cases import Routed, Staged, prime_points, route_batch, stage_new_case
from services.dispatch.records import CaseRecord
from services.dispatch.store import NewCaseRows, insert_cases
from shared.events import EventEnvelope, IncidentReported

__all__ = ["IncidentOutcome", "handle_incident", "handle_incidents"]


@dataclass(frozen=True)
class IncidentOutcome:
    """What :func:`handle_incident` did. 处理结果。"""

    case_id: uuid.UUID
    status: Literal["created", "exists"]
    outcome: str | None = None  # dispatch / triage / self_handled / merged
    merged_into: uuid.UUID | None = None


# --------------------------------------------------------------------------- duplicate check 并案检查

#: Duplicate candidates of a whole batch in one statement: for each report ``i``, the open,
#: unmerged cases of its matter in its bounding box and time window, and those of its 12345
#: caller; plus (``i = -1``) the cases the batch's incidents already have (a replay). Each
#: report's lookups are LATERAL subqueries kept apart by ``OFFSET 0``, so they stay index scans
#: per report (the partial indexes) — a join of the unnested arrays against ``cases`` would be
#: planned as a hash join over a scan of every open case. 整批一条语句取并案候选：每条报告 i
#: 的同事项范围内、时间窗内的未结案件，及同一来电人的未结案件；另取（i = -1）本批事件已有的
#: 案件（重放）。每条报告的查找为 LATERAL 子查询（OFFSET 0 防止被展开），保持逐条索引扫描。
_DUPLICATE_CANDIDATES = text(
    f"""
    SELECT b.i, c.id, c.matter, c.reported_at, c.lng, c.lat, c.grid, c.source, c.phone_hash
    FROM unnest(CAST(:box_i AS int[]), CAST(:box_matter AS text[]),
                CAST(:min_lng AS float8[]), CAST(:min_lat AS float8[]),
                CAST(:max_lng AS float8[]), CAST(:max_lat AS float8[]),
                CAST(:t_from AS timestamptz[]), CAST(:t_to AS timestamptz[]))
         AS b(i, matter, min_lng, min_lat, max_lng, max_lat, t_from, t_to)
    CROSS JOIN LATERAL (
        SELECT id, matter, reported_at, lng, lat, grid, source, phone_hash FROM {cases.fullname}
        WHERE state <> 'closed' AND merged_into IS NULL
          AND matter = b.matter AND lat BETWEEN b.min_lat AND b.max_lat
          AND lng BETWEEN b.min_lng AND b.max_lng AND reported_at BETWEEN b.t_from AND b.t_to
        OFFSET 0
    ) c
    UNION ALL
    SELECT p.i, c.id, c.matter, c.reported_at, c.lng, c.lat, c.grid, c.source, c.phone_hash
    FROM unnest(CAST(:phone_i AS int[]), CAST(:phone AS text[])) AS p(i, phone)
    CROSS JOIN LATERAL (
        SELECT id, matter, reported_at, lng, lat, grid, source, phone_hash FROM {cases.fullname}
        WHERE state <> 'closed' AND merged_into IS NULL AND phone_hash IS NOT NULL AND phone_hash = p.phone
        OFFSET 0
    ) c
    UNION ALL
    SELECT -1, incident_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM {cases.fullname} WHERE incident_id = ANY(CAST(:incidents AS uuid[]))
    """
)
#: Take the advisory locks in the (sorted) order given: one round trip. 按给定（已排序）顺序加咨询锁。
_LOCK_KEYS = text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k")


class _BatchCases:
    """Open, unmerged cases created earlier in the same batch, indexed like the database query.

    本批次中已建立、未结且未并案的案件，按数据库查询的方式索引（事项 + 网格单元；来电人）。
    """

    def __init__(self, distance_m: float) -> None:
        self.distance_m = distance_m
        self.by_cell: dict[tuple[str, int, int], list[OpenCase]] = defaultdict(list)
        self.by_caller: dict[str, list[OpenCase]] = defaultdict(list)

    def add(self, record: CaseRecord) -> None:
        """Index a new case if later reports may be merged into it. 若后续报告可能并入则登记。"""
        if record.snapshot.state is CaseState.CLOSED or record.merged_into is not None:
            return
        case = OpenCase(
            case_id=str(record.id),
            matter=record.snapshot.matter,
            reported_at=record.snapshot.reported_at,
            lng=record.lng,
            lat=record.lat,
            grid=record.grid,
            source=record.source,
            phone_hash=record.phone_hash,
        )
        if case.matter is not None and case.lng is not None and case.lat is not None:
            self.by_cell[(case.matter, *lock_cell(case.lng, case.lat))].append(case)
        if case.phone_hash:
            self.by_caller[case.phone_hash].append(case)

    def near(self, report: Report) -> list[OpenCase]:
        """Cases of this batch ``report`` might duplicate (a superset; :func:`find_duplicate` decides).

        本批次中可能与 ``report`` 重复的案件（超集，由 :func:`find_duplicate` 判定）。"""
        found: list[OpenCase] = []
        if report.matter is not None and report.lng is not None and report.lat is not None:
            for x, y in lock_cells(report.lng, report.lat, self.distance_m):
                found += self.by_cell.get((report.matter, x, y), ())
        if report.phone_hash:
            found += self.by_caller.get(report.phone_hash, ())
        return found


#: Query parameters of the bounding-box half of :data:`_DUPLICATE_CANDIDATES`, in order. 范围查询参数。
_BOX_PARAMS = ("box_i", "box_matter", "min_lng", "min_lat", "max_lng", "max_lat", "t_from", "t_to")


def _lock_keys_of(checked: Sequence[tuple[int, Report]], distance_m: float, window: timedelta) -> list[int]:
    """The sorted union of :func:`lock_keys` of the checked reports (time-slotted by ``window``: an
    import of past reports and today's live ones take disjoint keys). 本批并案检查键（排序、去重、按时间窗分段）。"""
    return sorted(
        {
            key
            for _, report in checked
            for key in lock_keys(
                matter=report.matter,
                lng=report.lng,
                lat=report.lat,
                phone_hash=report.phone_hash,
                distance_m=distance_m,
                reported_at=report.reported_at,
                window=window,
            )
        }
    )


def _candidate_params(
    batch: Sequence[Routed], checked: Sequence[tuple[int, Report]], distance_m: float, window: timedelta
) -> dict[str, Any]:
    """Parameters of :data:`_DUPLICATE_CANDIDATES` for the batch. 并案候选查询参数。"""
    boxes: dict[str, list[Any]] = defaultdict(list)
    phones: dict[str, list[Any]] = defaultdict(list)
    for i, report in checked:
        if report.lng is not None and report.lat is not None:
            min_lng, min_lat, max_lng, max_lat = search_box(report.lng, report.lat, distance_m)
            for name, value in (
                ("box_i", i),
                ("box_matter", report.matter),
                ("min_lng", min_lng),
                ("min_lat", min_lat),
                ("max_lng", max_lng),
                ("max_lat", max_lat),
                ("t_from", report.reported_at - window),
                ("t_to", report.reported_at + window),
            ):
                boxes[name].append(value)
        if report.phone_hash:
            phones["phone_i"].append(i)
            phones["phone"].append(report.phone_hash)
    params: dict[str, Any] = {name: boxes.get(name, []) for name in _BOX_PARAMS}
    params.update(phone_i=phones.get("phone_i", []), phone=phones.get("phone", []))
    params["incidents"] = [r.event.event_id for r in batch]
    return params


async def _lock_and_fetch(
    session: AsyncSession,
    batch: Sequence[Routed],
    *,
    distance_m: float,
    window: timedelta,
) -> tuple[dict[int, list[OpenCase]], set[uuid.UUID]]:
    """Lock the batch's duplicate keys, then fetch every report's candidates and the incidents seen before.

    加锁（本批全部键，排序后一次取得），再一次查询取各报告的并案候选及已立案的事件。

    Locks: the union of :func:`lock_keys` of the checked reports, sorted, taken in one
    statement — two transactions always take shared keys in the same order (no deadlock).
    Returns ``({batch index: open cases}, {incident ids that have a case already})``.
    """
    checked = [(i, r.report) for i, r in enumerate(batch) if r.report is not None]
    if not checked:
        return {}, set()
    keys = _lock_keys_of(checked, distance_m, window)
    if keys:
        await session.execute(_LOCK_KEYS, {"keys": keys})
    params = _candidate_params(batch, checked, distance_m, window)
    nearby: dict[int, list[OpenCase]] = defaultdict(list)
    existing: set[uuid.UUID] = set()
    for row in await session.execute(_DUPLICATE_CANDIDATES, params):
        if row.i < 0:
            existing.add(row.id)
            continue
        nearby[row.i].append(
            OpenCase(
                case_id=str(row.id),
                matter=row.matter,
                reported_at=row.reported_at,
                lng=row.lng,
                lat=row.lat,
                grid=row.grid,
                source=row.source,
                phone_hash=row.phone_hash,
            )
        )
    return nearby, existing


# --------------------------------------------------------------------------- the batch 批处理


#: Reports routed and staged between two yields to the event loop: routing a large batch is pure CPU
#: work, and the partitions applied side by side share one event loop — a transaction holding the
#: duplicate-check locks must not wait for another batch's whole routing between its statements.
#: 两次让出事件循环之间路由并暂存的报告数：各分区共享一个事件循环，持锁事务的语句之间不应等待
#: 另一批次的全部路由计算。
_STAGE_CHUNK = 16


async def _route_and_stage(
    reports: Sequence[tuple[IncidentReported, str]], jurisdiction: LoadedJurisdiction, lane: str
) -> list[Routed]:
    """Route every report and stage it as a new case of its own in ``lane``, yielding between chunks.
    路由并预先暂存。"""
    prime_points(reports, jurisdiction)
    batch: list[Routed] = []
    for start in range(0, len(reports), _STAGE_CHUNK):
        if start:
            # Let other partitions' transactions (which may hold the locks this batch needs) go on.
            # 让出事件循环：其他分区的事务（可能持有本批所需的锁）得以继续。
            await asyncio.sleep(0)
        chunk = route_batch(reports[start : start + _STAGE_CHUNK], jurisdiction)
        for routed in chunk:
            routed.record.lane = lane
            routed.staged = stage_new_case(routed, None)
        batch += chunk
    return batch


def _decide(
    batch: Sequence[Routed],
    nearby: dict[int, list[OpenCase]],
    existing: set[uuid.UUID],
    *,
    distance_m: float,
    window: timedelta,
) -> tuple[list[IncidentOutcome | None], list[Staged]]:
    """Per report: ``exists`` (replayed, or twice in the batch), else its new case — merged or not (pure).

    逐条判定：已存在（重放或同批重复），否则为新案件（是否并案）。Returns the outcomes known now
    (``None`` for a new case) and the new cases, in order. 返回已知结果（新案件为 None）与新案件。
    """
    outcomes: list[IncidentOutcome | None] = []
    new: list[Staged] = []
    seen: set[uuid.UUID] = set()
    earlier = _BatchCases(distance_m)
    for i, routed in enumerate(batch):
        incident = routed.event.event_id
        if incident in existing or incident in seen:  # replayed, or twice in the batch 重放或同批重复
            outcomes.append(IncidentOutcome(case_id=routed.record.id, status="exists"))
            continue
        seen.add(incident)
        duplicate: DuplicateMatch | None = None
        if routed.report is not None:
            duplicate = find_duplicate(
                routed.report,
                [*nearby.get(i, ()), *earlier.near(routed.report)],
                distance_m=distance_m,
                window=window,
            )
        staged = routed.staged if duplicate is None and routed.staged is not None else stage_new_case(routed, duplicate)
        earlier.add(staged.record)
        new.append(staged)
        outcomes.append(None)
    return outcomes, new


async def _insert(session: AsyncSession, new: Sequence[Staged]) -> set[uuid.UUID]:
    """Insert the new cases with the timeline rows and events of those inserted; their ids. 写入新案件。"""
    return await insert_cases(
        session,
        [
            NewCaseRows(
                staged.record.id,
                staged.case_values,
                staged.transition_values,
                staged.pending.events,
                staged.pending.bulk_events,
            )
            for staged in new
        ],
    )


def _outcomes(
    known: Sequence[IncidentOutcome | None], new: Sequence[Staged], inserted: set[uuid.UUID]
) -> list[IncidentOutcome]:
    """One outcome per report, in order: the new cases ``created`` unless another replica won. 逐条结果。"""
    created = iter(new)
    result_list: list[IncidentOutcome] = []
    for outcome in known:
        if outcome is not None:
            result_list.append(outcome)
            continue
        staged = next(created)
        record = staged.record
        if record.id in inserted:
            result_list.append(
                IncidentOutcome(
                    case_id=record.id, status="created", outcome=staged.outcome, merged_into=record.merged_into
                )
            )
        else:
            result_list.append(IncidentOutcome(case_id=record.id, status="exists"))
    return result_list


async def _handle_reports(
    session: AsyncSession,
    reports: Sequence[tuple[IncidentReported, str]],
    *,
    jurisdiction: LoadedJurisdiction,
    distance_m: float,
    window: timedelta,
    lane: str = "live",
) -> list[IncidentOutcome]:
    """The one code path of incidents (see :func:`handle_incidents`). 立案的唯一代码路径。

    Everything that does not depend on the duplicate check — routing, and staging each report
    as a new case of its own with its rows serialised — is done before the advisory locks are
    taken, so a transaction holds them only for the candidate query, the (rare) re-staging as
    merged and the inserts. 与并案检查无关的工作（路由、按不并案预先暂存并序列化）在加锁前完成，
    持锁期间只做候选查询、少量并案重新暂存与插入。
    """
    batch = await _route_and_stage(reports, jurisdiction, lane)
    nearby, existing = await _lock_and_fetch(session, batch, distance_m=distance_m, window=window)
    known, new = _decide(batch, nearby, existing, distance_m=distance_m, window=window)
    inserted = await _insert(session, new)
    return _outcomes(known, new, inserted)


async def handle_incidents(
    *,
    session: AsyncSession,
    envelopes: Sequence[EventEnvelope[Any]],
    jurisdiction: LoadedJurisdiction,
    duplicate_distance_m: float = 50.0,
    duplicate_window: timedelta = timedelta(hours=24),
    lane: str = "live",
) -> list[IncidentOutcome]:
    """Create the cases of a batch of ``incident.reported`` envelopes (in order), with a few set-based statements.

    批量立案（按序）：少量集合语句完成一批事件的立案、派遣、转人工、自办或并案。

    The same result as :func:`handle_incident` called once per envelope, in order, in this
    transaction — including duplicates *within* the batch (two reports of one spot → one
    case, one merged), replays (an incident with a case already → ``exists``, nothing
    written) and deterministic ids. The database work per batch is: one advisory-lock
    statement (the sorted union of the batch's keys), one query for every report's duplicate
    candidates (and the incidents that have a case already), one multi-row ``INSERT … ON
    CONFLICT DO NOTHING RETURNING`` of cases, one of timeline rows, one of outbox rows.
    与逐条调用 :func:`handle_incident` 结果相同（含批内并案、重放幂等、确定性 id）；
    每批数据库工作：一次加锁、一次候选查询、案件 / 时间线 / 发件箱各一条多行插入。

    Every envelope's ``data`` must be an :class:`IncidentReported`. Returns one outcome per
    envelope, in order. 每个信封的 data 必须是 IncidentReported；按序返回处理结果。
    ``lane``: the intake lane they came in (``bulk``: a history import), kept by their cases.
    """
    reports: list[tuple[IncidentReported, str]] = []
    for envelope in envelopes:
        if not isinstance(envelope.data, IncidentReported):
            raise TypeError(f"not an incident.reported envelope: {envelope.type} {envelope.id}")
        reports.append((envelope.data, envelope.correlation_id))
    return await _handle_reports(
        session,
        reports,
        jurisdiction=jurisdiction,
        distance_m=duplicate_distance_m,
        window=duplicate_window,
        lane=lane,
    )


async def handle_incident(
    *,
    session: AsyncSession,
    event: IncidentReported,
    jurisdiction: LoadedJurisdiction,
    correlation_id: str,
    duplicate_distance_m: float = 50.0,
    duplicate_window: timedelta = timedelta(hours=24),
) -> IncidentOutcome:
    """Create the case of ``event`` (once) and dispatch, triage, record or merge it. 立案并派遣。

    Idempotent: a second call for the same incident changes nothing. The duplicate
    check is serialised across replicas with ``pg_advisory_xact_lock`` on
    (matter, coarse cell) keys (and the 12345 caller). A batch of one of
    :func:`handle_incidents` (the same code path). 幂等；并案检查用咨询锁跨副本串行；
    即一条事件的批量处理（同一代码路径）。
    """
    [outcome] = await _handle_reports(
        session,
        [(event, correlation_id)],
        jurisdiction=jurisdiction,
        distance_m=duplicate_distance_m,
        window=duplicate_window,
    )
    return outcome
