-- composed after the shared spans.sql CTEs
-- The longest stops: every span of a state that is neither production nor planned downtime (one state
-- record until the machine's next one) that lost planned busy time in the window, with when it began
-- and ended (also outside the window) and how much planned time of the window it took.
SELECT asset_id, category, state, reason, ts AS started, max(t1) AS ended,
       epoch(max(t1)) - epoch(ts) AS duration_s,
       sum(dur_s) AS lost_in_window_s,
       max(t1) >= $now AS ongoing
FROM span_pieces
WHERE category NOT IN ('production', 'planned_down')
GROUP BY asset_id, category, state, reason, ts
ORDER BY lost_in_window_s DESC, duration_s DESC, asset_id, started
LIMIT $top
