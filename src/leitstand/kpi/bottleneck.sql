-- composed after the shared spans.sql CTEs
-- The active-period method (Roser, Nakano, Tanaka 2001): inside planned time a machine is active unless
-- it waits (starved, blocked, idle: the states in `waiting`) or is planned down; an active period is an
-- uninterrupted run of active time (a break or a wait ends it). Per machine: active time, the planned
-- time observed, and the number of active periods that began in the window (or were running when it
-- opened). The machine of a line with the longest average active period is its bottleneck.
pieces AS (
    SELECT asset_id, greatest(t0, piece_start) AS a, least(t1, piece_end) AS b,
           category <> 'planned_down' AND state NOT IN (SELECT state FROM waiting) AS active
    FROM span_pieces
),
marked AS (
    SELECT asset_id, a, b, active,
           -- a period begins where the machine becomes active, or goes on after a gap (a break)
           active AND coalesce(NOT lag(active) OVER w OR lag(b) OVER w < a, true) AS begins
    FROM pieces
    WINDOW w AS (PARTITION BY asset_id ORDER BY a)
)
SELECT m.asset_id, m.line_id,
       coalesce(sum(epoch(b) - epoch(a)) FILTER (WHERE active), 0) AS active_s,
       coalesce(sum(epoch(b) - epoch(a)), 0) AS observed_s,
       count(*) FILTER (WHERE begins)::BIGINT AS periods
FROM machines m
LEFT JOIN marked k USING (asset_id)
GROUP BY ALL
ORDER BY m.line_id, m.asset_id
