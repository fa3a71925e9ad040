-- OEE time model (ISO 22400-2) per bucket for every machine, rolled up by summing times and quantities
-- per line, area, site and enterprise, then dividing (in domain.time_model.OeeTimes). Ratios are never
-- averaged. Inputs: pieces (the rows of pieces.sql, from raw records or from the roll-up), machines,
-- buckets(bucket, lo, hi, shift, shift_date); `bucketed` assigns each piece its bucket (composed in).
per_bucket AS (
    SELECT bucket, asset_id,
           sum(pot_s) AS pot_s, sum(planned_down_s) AS planned_down_s, sum(production_s) AS production_s,
           sum(setup_s) AS setup_s, sum(delay_s) AS delay_s, sum(down_s) AS down_s,
           sum(unmapped_state_s) AS unmapped_state_s, sum(minor_stop_s) AS minor_stop_s,
           sum(failures) AS failures, sum(produced) AS produced, sum(good) AS good, sum(scrap) AS scrap,
           sum(rework) AS rework,
           sum(ideal_s) AS ideal_s, sum(good_ideal_s) AS good_ideal_s,
           sum(units_without_ideal_cycle) AS units_without_ideal_cycle
    FROM bucketed
    GROUP BY bucket, asset_id
),
per_machine AS (
    -- every machine in every bucket, with or without planned time
    SELECT b.bucket, m.site_id, m.area_id, m.line_id, m.asset_id,
           epoch(b.hi) - epoch(b.lo) AS calendar_s,
           coalesce(t.pot_s, 0) AS pot_s,
           coalesce(t.planned_down_s, 0) AS planned_down_s,
           coalesce(t.production_s, 0) AS production_s,
           coalesce(t.setup_s, 0) AS setup_s,
           coalesce(t.delay_s, 0) AS delay_s,
           coalesce(t.down_s, 0) AS down_s,
           -- planned time no state covers, plus time in states no mapping names
           coalesce(t.pot_s - t.production_s - t.setup_s - t.delay_s - t.down_s - t.planned_down_s, 0)
               AS unknown_s,
           coalesce(t.unmapped_state_s, 0) AS unmapped_state_s,
           coalesce(t.minor_stop_s, 0) AS minor_stop_s,
           coalesce(t.failures, 0) AS failures,
           coalesce(t.produced, 0) AS produced,
           coalesce(t.good, 0) AS good,
           coalesce(t.scrap, 0) AS scrap,
           coalesce(t.rework, 0) AS rework,
           coalesce(t.ideal_s, 0) AS ideal_s,
           coalesce(t.good_ideal_s, 0) AS good_ideal_s,
           coalesce(t.units_without_ideal_cycle, 0) AS units_without_ideal_cycle
    FROM machines m
    CROSS JOIN buckets b
    LEFT JOIN per_bucket t ON t.asset_id = m.asset_id AND t.bucket = b.bucket
),
rolled AS (
    SELECT bucket,
           CASE WHEN grouping(asset_id) = 0 THEN 'machine'
                WHEN grouping(line_id) = 0 THEN 'line'
                WHEN grouping(area_id) = 0 THEN 'area'
                WHEN grouping(site_id) = 0 THEN 'site'
                ELSE 'enterprise' END AS level,
           CASE WHEN grouping(asset_id) = 0 THEN asset_id
                WHEN grouping(line_id) = 0 THEN line_id
                WHEN grouping(area_id) = 0 THEN area_id
                WHEN grouping(site_id) = 0 THEN site_id
                ELSE $enterprise END AS id,
           count(*)::BIGINT AS machines,
           sum(pot_s) AS pot_s, sum(planned_down_s) AS planned_down_s,
           sum(pot_s) - sum(planned_down_s) AS pbt_s,
           sum(production_s) AS production_s, sum(setup_s) AS setup_s, sum(delay_s) AS delay_s,
           sum(down_s) AS down_s, sum(unknown_s) AS unknown_s, sum(unmapped_state_s) AS unmapped_state_s,
           sum(minor_stop_s) AS minor_stop_s, sum(failures)::BIGINT AS failures,
           sum(calendar_s) AS calendar_s,
           sum(produced)::BIGINT AS produced, sum(good)::BIGINT AS good, sum(scrap)::BIGINT AS scrap,
           sum(rework)::BIGINT AS rework,
           sum(ideal_s) AS ideal_s, sum(good_ideal_s) AS good_ideal_s,
           sum(units_without_ideal_cycle)::BIGINT AS units_without_ideal_cycle
    FROM per_machine
    GROUP BY GROUPING SETS ((bucket, site_id, area_id, line_id, asset_id), (bucket, site_id, area_id, line_id),
                            (bucket, site_id, area_id), (bucket, site_id), (bucket))
    HAVING count(*) > 0  -- a tenant without machines has no rows, not an enterprise row of NULLs
)
SELECT * FROM rolled
ORDER BY bucket, level, id
