-- composed after the shared spans.sql CTEs
-- The ISO 22400-2 time model's additive inputs for every machine in every planned piece of the window
-- [$start, $end): the grain the OEE roll-ups keep (`kpi/rollup.py`), summed by `levels.sql`.
-- Inputs registered by the caller: machines(asset_id, site_id, area_id, line_id, ideal_cycle_s, map_key),
-- planned(site_id, hour_no, start_ts, end_ts, shift, shift_date): planned time clipped to the window, not
-- overlapping, cut at each UTC hour (`hour_no` counts hours since the epoch), state_map(map_key, state,
-- category), ideal_cycle(asset_id, product_id, ideal_cycle_s). A count at ts covers the interval ending
-- at ts.
piece_times AS (
    SELECT asset_id, piece_start,
           sum(dur_s) FILTER (WHERE category = 'production') AS production_s,
           sum(dur_s) FILTER (WHERE category = 'setup') AS setup_s,
           sum(dur_s) FILTER (WHERE category = 'delay') AS delay_s,
           sum(dur_s) FILTER (WHERE category = 'down') AS down_s,
           sum(dur_s) FILTER (WHERE category = 'planned_down') AS planned_down_s,
           sum(dur_s) FILTER (WHERE category = 'unknown') AS unmapped_s,
           -- a minor stop: a delay whose whole span is shorter than the threshold
           sum(dur_s) FILTER (WHERE category = 'delay' AND epoch(t1) - epoch(ts) < $minor_stop_s) AS minor_stop_s,
           -- failures: entries into `down` that begin inside planned time, counted in the piece holding
           -- their start (so each belongs to exactly one piece and one window)
           count(*) FILTER (
               WHERE category = 'down' AND prev_category IS DISTINCT FROM category
                 AND ts >= piece_start AND ts < piece_end
           ) AS failures
    FROM span_pieces
    GROUP BY asset_id, piece_start
),
piece_counts AS (
    -- units per machine, piece and product in planned time, summed before ideal cycle times are joined
    SELECT c.asset_id, p.start_ts AS piece_start, c.product_id, sum(c.produced) AS produced,
           sum(c.scrap) AS scrap, sum(c.rework) AS rework
    FROM counts c
    JOIN machines m USING (asset_id)
    -- a count at exactly a piece's end closes that piece (counts cover (start, end])
    JOIN planned p ON p.site_id = m.site_id AND p.hour_no = (epoch_us(c.ts) - 1) // 3600000000
                  AND c.ts > p.start_ts AND c.ts <= p.end_ts
    WHERE c.tenant = $tenant AND c.ts > $start AND c.ts <= $end
    GROUP BY ALL
),
piece_quantities AS (
    SELECT k.asset_id, k.piece_start,
           sum(k.produced) AS produced,
           -- good: right the first time (rework is a quality loss until the unit passes again)
           sum(k.produced - k.scrap - k.rework) AS good,
           sum(k.scrap) AS scrap,
           sum(k.rework) AS rework,
           sum(k.produced * coalesce(ic.ideal_cycle_s, m.ideal_cycle_s)) AS ideal_s,
           sum((k.produced - k.scrap - k.rework) * coalesce(ic.ideal_cycle_s, m.ideal_cycle_s)) AS good_ideal_s,
           sum(CASE WHEN coalesce(ic.ideal_cycle_s, m.ideal_cycle_s) IS NULL THEN k.produced ELSE 0 END)
               AS units_without_ideal_cycle
    FROM piece_counts k
    JOIN machines m USING (asset_id)
    LEFT JOIN ideal_cycle ic ON ic.asset_id = k.asset_id AND ic.product_id = k.product_id
    GROUP BY k.asset_id, k.piece_start
),
machine_pieces AS (
    -- every machine in every planned piece of its site, with or without records
    SELECT m.asset_id, p.start_ts AS piece_start, p.shift, p.shift_date,
           epoch(p.end_ts) - epoch(p.start_ts) AS pot_s,
           coalesce(t.planned_down_s, 0) AS planned_down_s,
           coalesce(t.production_s, 0) AS production_s,
           coalesce(t.setup_s, 0) AS setup_s,
           coalesce(t.delay_s, 0) AS delay_s,
           coalesce(t.down_s, 0) AS down_s,
           coalesce(t.unmapped_s, 0) AS unmapped_state_s,
           coalesce(t.minor_stop_s, 0) AS minor_stop_s,
           coalesce(t.failures, 0)::BIGINT AS failures,
           coalesce(q.produced, 0)::BIGINT AS produced,
           coalesce(q.good, 0)::BIGINT AS good,
           coalesce(q.scrap, 0)::BIGINT AS scrap,
           coalesce(q.rework, 0)::BIGINT AS rework,
           coalesce(q.ideal_s, 0) AS ideal_s,
           coalesce(q.good_ideal_s, 0) AS good_ideal_s,
           coalesce(q.units_without_ideal_cycle, 0)::BIGINT AS units_without_ideal_cycle
    FROM machines m
    JOIN planned p USING (site_id)
    LEFT JOIN piece_times t ON t.asset_id = m.asset_id AND t.piece_start = p.start_ts
    LEFT JOIN piece_quantities q ON q.asset_id = m.asset_id AND q.piece_start = p.start_ts
)
SELECT * FROM machine_pieces
