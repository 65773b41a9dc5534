"""The SQL texts of batch reconciliation (``ReconciliationStore`` runs them): keeping what a
snapshot's two sides do not hold alike, and stages 1 and 2 of a run."""

from __future__ import annotations

# Ordered by start alone (as the lookup index is): of two blocks starting at one serial, whichever
# comes second overlaps the first, so the first overlap found is the same in any order of ties.
OVERLAP = """
SELECT o, s FROM (
  SELECT origin_region AS o, serial_start AS s,
         MAX(serial_end) OVER (
           PARTITION BY origin_region ORDER BY serial_start
           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
  FROM snapshot_incoming
) t WHERE reach >= s ORDER BY o, s LIMIT 1
"""
# Built once the rows are in (a sort, not an insert per row); PostgreSQL hashes instead.
INDEX_INCOMING_SQLITE = (
    "CREATE INDEX temp.ix_snapshot_incoming ON snapshot_incoming (origin_region, serial_start)"
)

KEPT_GRAMS = """
SELECT side, origin_region, state, SUM(serial_end - serial_start + 1)
FROM snapshot_blocks WHERE snapshot_id = :sid GROUP BY side, origin_region, state
"""

# A block the ledger holds as held (an open duplicate case holds its issuance) matches the
# registry's block as held or as active: registries learn of holds late. The equivalence is
# one-way — a block the registry calls held that the ledger has active differs.
UNMATCHED_REGISTRY = """
INSERT INTO snapshot_unmatched (side, origin_region, serial_start, serial_end, state)
SELECT 'registry', i.origin_region, i.serial_start, i.serial_end, i.state
FROM snapshot_incoming i
WHERE NOT EXISTS (
  SELECT 1 FROM unit_blocks u
  WHERE u.origin_region = i.origin_region AND u.serial_start = i.serial_start
    AND u.serial_end = i.serial_end AND u.holder_region = :region
    AND (u.state = i.state OR (u.state = 'held' AND i.state = 'active')))
"""

UNMATCHED_LEDGER = """
INSERT INTO snapshot_unmatched (side, origin_region, serial_start, serial_end, state)
SELECT 'ledger', u.origin_region, u.serial_start, u.serial_end, u.state
FROM unit_blocks u
WHERE u.holder_region = :region AND NOT EXISTS (
  SELECT 1 FROM snapshot_incoming i
  WHERE i.origin_region = u.origin_region AND i.serial_start = u.serial_start
    AND i.serial_end = u.serial_end
    AND (i.state = u.state OR (u.state = 'held' AND i.state = 'active')))
"""
# Built once the rows are in: the range join of TILE looks ledger blocks up by their start on
# both backends; PostgreSQL hashes the lookups of the tiled pairs instead.
INDEX_UNMATCHED = (
    "CREATE INDEX {temp}ix_snapshot_unmatched"
    " ON snapshot_unmatched (side, origin_region, serial_start)"
)
INDEX_TILED_SQLITE = (
    "CREATE INDEX temp.ix_snapshot_tiled_registry"
    " ON snapshot_tiled (origin_region, registry_start)",
    "CREATE INDEX temp.ix_snapshot_tiled_ledger ON snapshot_tiled (origin_region, ledger_start)",
)

# The ledger keeps finer blocks than the registry where it has split a block the registry has not
# (a retirement, a transfer out and back; the registry's own arrive joined into runs): a registry
# block that the ledger's unmatched blocks inside it tile exactly, each in an equivalent state, is
# held alike too, and so are those ledger blocks. The ledger's blocks never overlap, so blocks
# inside the registry's whose grams add up to its grams cover it exactly.
TILE = """
INSERT INTO snapshot_tiled (origin_region, registry_start, ledger_start)
SELECT o, rs, us FROM (
  SELECT r.origin_region AS o, r.serial_start AS rs, u.serial_start AS us,
         r.serial_end - r.serial_start + 1 AS grams,
         SUM(u.serial_end - u.serial_start + 1)
           OVER (PARTITION BY r.origin_region, r.serial_start) AS covered
  FROM snapshot_unmatched r JOIN snapshot_unmatched u
    ON u.side = 'ledger' AND u.origin_region = r.origin_region
   AND u.serial_start >= r.serial_start AND u.serial_start <= r.serial_end
   AND u.serial_end <= r.serial_end
   AND (u.state = r.state OR (u.state = 'held' AND r.state = 'active'))
  WHERE r.side = 'registry'
) t WHERE covered = grams
"""

KEEP_REGISTRY_ONLY = """
INSERT INTO snapshot_blocks (snapshot_id, side, origin_region, serial_start, serial_end, state)
SELECT :sid, 'registry', r.origin_region, r.serial_start, r.serial_end, r.state
FROM snapshot_unmatched r
WHERE r.side = 'registry' AND NOT EXISTS (
  SELECT 1 FROM snapshot_tiled t
  WHERE t.origin_region = r.origin_region AND t.registry_start = r.serial_start)
"""

KEEP_LEDGER_ONLY = """
INSERT INTO snapshot_blocks (snapshot_id, side, origin_region, serial_start, serial_end, state)
SELECT :sid, 'ledger', u.origin_region, u.serial_start, u.serial_end, u.state
FROM snapshot_unmatched u
WHERE u.side = 'ledger' AND NOT EXISTS (
  SELECT 1 FROM snapshot_tiled t
  WHERE t.origin_region = u.origin_region AND t.ledger_start = u.serial_start)
"""

# -- stage 1: totals per origin and state --------------------------------------------------------

# Held grams count with the active ones on both sides (a registry may report held units as active);
# stage 2 still tells a block the registry calls held that the ledger has active.
TOTALS = """
SELECT origin_region, st, SUM(registry_grams), SUM(ledger_grams) FROM (
  SELECT origin_region, CASE WHEN state = 'held' THEN 'active' ELSE state END AS st,
         registry_grams, ledger_grams
  FROM snapshot_totals WHERE snapshot_id = :sid
) t
GROUP BY origin_region, st HAVING SUM(registry_grams) <> SUM(ledger_grams)
ORDER BY origin_region, st
"""


# -- stage 2: serial ranges ----------------------------------------------------------------------

# A block both sides hold identically (same origin, serials and state) cannot differ (snapshots
# stored since migration 0008 keep no such blocks; older ones have them all), and blocks of
# one side never overlap, so only the unmatched blocks are compared. Each side's adjacent blocks
# of one state are first joined into runs (a registry that splits or joins blocks differently
# holds the same runs), and runs both sides hold identically drop out the same way: the grams each
# side holds in each state are unchanged by both steps. The remaining runs' boundaries cut the
# serial line into elementary segments; on each segment each side has at most one run. The run
# covering a segment is the last one that started at or before it: carried forward with a running
# count of run starts (a group number) and a window over that group. Differing segments are
# classified — a segment the ledger holds as held and the registry as active does not differ (see
# UNMATCHED_REGISTRY) —, then adjacent segments of the same kind and states are merged (gaps and
# islands).
RANGES = """
WITH unmatched AS (
  SELECT s.side, s.origin_region, s.serial_start, s.serial_end, s.state
  FROM snapshot_blocks s
  WHERE s.snapshot_id = :sid AND NOT EXISTS (
    SELECT 1 FROM snapshot_blocks m
    WHERE m.snapshot_id = :sid
      AND m.side = CASE s.side WHEN 'registry' THEN 'ledger' ELSE 'registry' END
      AND m.origin_region = s.origin_region AND m.serial_start = s.serial_start
      AND m.serial_end = s.serial_end AND m.state = s.state)
),
edges AS (
  SELECT side, origin_region, serial_start, serial_end, state,
         CASE WHEN LAG(serial_end) OVER (PARTITION BY side, origin_region ORDER BY serial_start)
                   = serial_start - 1
               AND LAG(state) OVER (PARTITION BY side, origin_region ORDER BY serial_start) = state
              THEN 0 ELSE 1 END AS brk
  FROM unmatched
),
numbered AS (
  SELECT side, origin_region, serial_start, serial_end, state,
         SUM(brk) OVER (PARTITION BY side, origin_region ORDER BY serial_start
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run
  FROM edges
),
runs AS (
  SELECT side, origin_region, MIN(serial_start) AS serial_start, MAX(serial_end) AS serial_end,
         MIN(state) AS state
  FROM numbered GROUP BY side, origin_region, run
),
differing AS (
  SELECT r.side, r.origin_region, r.serial_start, r.serial_end, r.state FROM runs r
  WHERE NOT EXISTS (
    SELECT 1 FROM runs m
    WHERE m.side <> r.side AND m.origin_region = r.origin_region
      AND m.serial_start = r.serial_start AND m.serial_end = r.serial_end AND m.state = r.state)
),
ev AS (
  SELECT origin_region AS o, serial_start AS p,
         CASE WHEN side = 'registry' THEN serial_end END AS r_end,
         CASE WHEN side = 'registry' THEN state END AS r_state,
         CASE WHEN side = 'ledger' THEN serial_end END AS l_end,
         CASE WHEN side = 'ledger' THEN state END AS l_state
  FROM differing
  UNION ALL
  SELECT origin_region, serial_end + 1, NULL, NULL, NULL, NULL FROM differing
),
pts AS (
  SELECT o, p, MAX(r_end) AS r_end, MAX(r_state) AS r_state,
         MAX(l_end) AS l_end, MAX(l_state) AS l_state
  FROM ev GROUP BY o, p
),
carried AS (
  SELECT o, p, LEAD(p) OVER (PARTITION BY o ORDER BY p) - 1 AS e, r_end, r_state, l_end, l_state,
         COUNT(r_end) OVER (PARTITION BY o ORDER BY p
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS rg,
         COUNT(l_end) OVER (PARTITION BY o ORDER BY p
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS lg
  FROM pts
),
segs AS (
  SELECT o, p AS s, e,
         MAX(r_end) OVER (PARTITION BY o, rg) AS r_end,
         MAX(r_state) OVER (PARTITION BY o, rg) AS r_state,
         MAX(l_end) OVER (PARTITION BY o, lg) AS l_end,
         MAX(l_state) OVER (PARTITION BY o, lg) AS l_state
  FROM carried
),
cls AS (
  SELECT o, s, e,
         CASE WHEN r_end >= s THEN r_state END AS rs,
         CASE WHEN l_end >= s THEN l_state END AS ls
  FROM segs WHERE e IS NOT NULL
),
diff AS (
  SELECT o, s, e, rs, ls,
         CASE WHEN rs IS NULL THEN 'LEDGER_ONLY'
              WHEN ls IS NULL THEN 'REGISTRY_ONLY'
              ELSE 'STATE_MISMATCH' END AS kind
  FROM cls
  WHERE (rs IS NULL AND ls IS NOT NULL) OR (rs IS NOT NULL AND ls IS NULL)
     OR (rs <> ls AND NOT (ls = 'held' AND rs = 'active'))
),
marked AS (
  SELECT o, s, e, rs, ls, kind,
         CASE WHEN LAG(e) OVER (PARTITION BY o, kind, COALESCE(rs, ''), COALESCE(ls, '')
                                ORDER BY s) = s - 1 THEN 0 ELSE 1 END AS brk
  FROM diff
),
grouped AS (
  SELECT o, s, e, rs, ls, kind,
         SUM(brk) OVER (PARTITION BY o, kind, COALESCE(rs, ''), COALESCE(ls, '') ORDER BY s
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS g
  FROM marked
)
SELECT kind, o, rs, ls, MIN(s) AS lo, MAX(e) AS hi
FROM grouped GROUP BY kind, o, rs, ls, g
ORDER BY kind, o, rs, ls, lo
"""
