-- composed after the shared spans.sql CTEs
-- Where planned busy time was lost, by category, state and reason, for the downtime Pareto: the time of
-- every non-production span inside planned time, how many stops began in the window, on how many machines.
lost AS (
    SELECT asset_id, category, state, reason, ts, dur_s
    FROM span_pieces
    WHERE category NOT IN ('production', 'planned_down')
)
SELECT category, state, reason, sum(dur_s) AS duration_s,
       sum(sum(dur_s)) OVER () AS total_lost_s,  -- over all rows, before LIMIT
       count(DISTINCT (asset_id, ts)) FILTER (WHERE ts >= $start)::BIGINT AS stops,
       count(DISTINCT asset_id)::BIGINT AS machines
FROM lost
GROUP BY ALL
ORDER BY duration_s DESC, category, state, reason
LIMIT $top
