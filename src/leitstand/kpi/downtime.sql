-- composed after the shared spans.sql CTEs
-- Where planned busy time was lost, by category, state and reason, for the downtime Pareto: the time of
-- every non-production span inside planned time, how many stops began in the window, on how many machines.
lost AS (
    SELECT s.asset_id, s.category, s.state, s.reason, s.ts,
           epoch(least(s.t1, p.end_ts)) - epoch(greatest(s.t0, p.start_ts)) AS dur_s
    FROM state_spans s
    JOIN machines m USING (asset_id)
    JOIN planned p ON p.site_id = m.site_id AND s.t0 < p.end_ts AND s.t1 > p.start_ts
    WHERE s.category NOT IN ('production', 'planned_down')
)
SELECT category, state, reason, sum(dur_s) AS duration_s,
       sum(sum(dur_s)) OVER () AS total_lost_s,  -- over all rows, before LIMIT
       count(DISTINCT (asset_id, ts)) FILTER (WHERE ts >= $start)::BIGINT AS stops,
       count(DISTINCT asset_id)::BIGINT AS machines
FROM lost
GROUP BY ALL
ORDER BY duration_s DESC, category, state, reason
LIMIT $top
