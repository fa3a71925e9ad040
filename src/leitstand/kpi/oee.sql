-- OEE time model (ISO 22400-2) for every machine of a tenant over [$start, $end), rolled up by summing
-- times and quantities per line, area, site and enterprise, then dividing. Ratios are never averaged.
-- Inputs registered by the caller: machines(asset_id, site_id, area_id, line_id, ideal_cycle_s),
-- planned(site_id, day, start_ts, end_ts): planned time clipped to the window, not overlapping, cut at
-- each UTC midnight (`day` is the UTC date of the piece), state_map(map_key, state, category) with
-- machines.map_key naming each machine's mapping,
-- ideal_cycle(asset_id, product_id, ideal_cycle_s). A count at ts covers the interval ending at ts.
-- composed after the shared spans.sql CTEs
machine_pot AS (
    SELECT m.asset_id, sum(epoch(p.end_ts) - epoch(p.start_ts)) AS pot_s
    FROM machines m JOIN planned p USING (site_id)
    GROUP BY m.asset_id
),
category_times AS (
    SELECT s.asset_id, s.category,
           sum(epoch(least(s.t1, p.end_ts)) - epoch(greatest(s.t0, p.start_ts))) AS dur_s,
           -- a minor stop: a delay whose whole span is shorter than the threshold
           sum(epoch(least(s.t1, p.end_ts)) - epoch(greatest(s.t0, p.start_ts)))
               FILTER (WHERE s.category = 'delay' AND epoch(s.t1) - epoch(s.ts) < $minor_stop_s) AS minor_s,
           -- episodes: entries into the category that begin inside planned time (so every episode
           -- belongs to exactly one window); pieces do not overlap, so one piece holds the start
           count(*) FILTER (
               WHERE s.prev_category IS DISTINCT FROM s.category AND s.ts >= p.start_ts AND s.ts < p.end_ts
           ) AS episodes
    FROM state_spans s
    JOIN machines m USING (asset_id)
    JOIN planned p ON p.site_id = m.site_id AND s.t0 < p.end_ts AND s.t1 > p.start_ts
    GROUP BY ALL
),
machine_times AS (
    SELECT asset_id,
           coalesce(sum(dur_s) FILTER (WHERE category = 'production'), 0) AS production_s,
           coalesce(sum(dur_s) FILTER (WHERE category = 'setup'), 0) AS setup_s,
           coalesce(sum(dur_s) FILTER (WHERE category = 'delay'), 0) AS delay_s,
           coalesce(sum(dur_s) FILTER (WHERE category = 'down'), 0) AS down_s,
           coalesce(sum(dur_s) FILTER (WHERE category = 'planned_down'), 0) AS planned_down_s,
           coalesce(sum(dur_s) FILTER (WHERE category = 'unknown'), 0) AS unmapped_s,
           coalesce(sum(minor_s), 0) AS minor_stop_s,
           coalesce(sum(episodes) FILTER (WHERE category = 'down'), 0)::BIGINT AS failures
    FROM category_times
    GROUP BY asset_id
),
planned_counts AS (
    -- units per machine and product in planned time, summed before ideal cycle times are joined
    SELECT c.asset_id, c.product_id, sum(c.produced) AS produced, sum(c.scrap) AS scrap
    FROM counts c
    JOIN machines m USING (asset_id)
    -- planned pieces never cross a UTC midnight, so a count meets only its own day's pieces; a count
    -- at exactly midnight closes the previous day's last piece (counts cover (start, end])
    JOIN planned p ON p.site_id = m.site_id AND p.day = CAST(c.ts - INTERVAL 1 MICROSECOND AS DATE)
                  AND c.ts > p.start_ts AND c.ts <= p.end_ts
    WHERE c.tenant = $tenant AND c.ts > $start AND c.ts <= $end
    GROUP BY c.asset_id, c.product_id
),
machine_counts AS (
    SELECT k.asset_id,
           sum(k.produced)::BIGINT AS produced,
           sum(k.produced - k.scrap)::BIGINT AS good,
           sum(k.scrap)::BIGINT AS scrap,
           sum(k.produced * coalesce(ic.ideal_cycle_s, m.ideal_cycle_s)) AS ideal_s,
           sum((k.produced - k.scrap) * coalesce(ic.ideal_cycle_s, m.ideal_cycle_s)) AS good_ideal_s,
           sum(CASE WHEN coalesce(ic.ideal_cycle_s, m.ideal_cycle_s) IS NULL THEN k.produced ELSE 0 END)::BIGINT
               AS units_without_ideal_cycle
    FROM planned_counts k
    JOIN machines m USING (asset_id)
    LEFT JOIN ideal_cycle ic ON ic.asset_id = k.asset_id AND ic.product_id = k.product_id
    GROUP BY k.asset_id
),
per_machine AS (
    SELECT m.site_id, m.area_id, m.line_id, m.asset_id,
           coalesce(mp.pot_s, 0) AS pot_s,
           coalesce(t.planned_down_s, 0) AS planned_down_s,
           coalesce(t.production_s, 0) AS production_s,
           coalesce(t.setup_s, 0) AS setup_s,
           coalesce(t.delay_s, 0) AS delay_s,
           coalesce(t.down_s, 0) AS down_s,
           -- planned time no state covers, plus time in states no mapping names
           coalesce(mp.pot_s, 0) - coalesce(t.production_s + t.setup_s + t.delay_s + t.down_s
                                            + t.planned_down_s, 0) AS unknown_s,
           coalesce(t.unmapped_s, 0) AS unmapped_state_s,
           coalesce(t.minor_stop_s, 0) AS minor_stop_s,
           coalesce(t.failures, 0) AS failures,
           coalesce(c.produced, 0) AS produced,
           coalesce(c.good, 0) AS good,
           coalesce(c.scrap, 0) AS scrap,
           coalesce(c.ideal_s, 0) AS ideal_s,
           coalesce(c.good_ideal_s, 0) AS good_ideal_s,
           coalesce(c.units_without_ideal_cycle, 0) AS units_without_ideal_cycle
    FROM machines m
    LEFT JOIN machine_pot mp USING (asset_id)
    LEFT JOIN machine_times t USING (asset_id)
    LEFT JOIN machine_counts c USING (asset_id)
),
rolled AS (
    SELECT CASE WHEN grouping(asset_id) = 0 THEN 'machine'
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
           count(*) * (epoch($end) - epoch($start)) AS calendar_s,
           sum(produced)::BIGINT AS produced, sum(good)::BIGINT AS good, sum(scrap)::BIGINT AS scrap,
           sum(ideal_s) AS ideal_s, sum(good_ideal_s) AS good_ideal_s,
           sum(units_without_ideal_cycle)::BIGINT AS units_without_ideal_cycle
    FROM per_machine
    GROUP BY GROUPING SETS ((site_id, area_id, line_id, asset_id), (site_id, area_id, line_id),
                            (site_id, area_id), (site_id), ())
    HAVING count(*) > 0  -- a tenant without machines has no rows, not an enterprise row of NULLs
)
-- the ratios come from these sums in one place: domain.time_model.OeeTimes
SELECT * FROM rolled
ORDER BY level, id
