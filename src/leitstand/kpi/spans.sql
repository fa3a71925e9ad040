-- The state spans of a tenant's machines around the window [$start, $end): each state lasts from its
-- `ts` to the machine's next state (the newest one until now), but at most $hold_us microseconds (the
-- state lookback: after that, without news, the time is unknown), with its time category and the
-- category before it. Shared by the OEE, downtime and bottleneck queries (`kpi/oee.py` composes them).
state_points AS (
    SELECT asset_id, ts, state, reason FROM states
    WHERE tenant = $tenant AND ts >= $start AND ts < $end
    UNION ALL
    -- the state each machine was in when the window opened
    SELECT asset_id, max(ts) AS ts, arg_max(state, ts) AS state, arg_max_null(reason, ts) AS reason FROM states
    WHERE tenant = $tenant AND ts < $start AND ts >= $lookback
    GROUP BY asset_id
    UNION ALL
    -- the first state after the window: where the window's last span really ends (it lies outside
    -- planned time in the window, so it adds no time of its own)
    SELECT asset_id, min(ts) AS ts, arg_min(state, ts) AS state, arg_min_null(reason, ts) AS reason FROM states
    WHERE tenant = $tenant AND ts >= $end AND ts < $lookahead
    GROUP BY asset_id
),
state_spans AS (
    SELECT asset_id, state, reason, ts, category, greatest(ts, $start) AS t0,
           -- a span lasts until the next state; the newest state lasts until now
           least(lead(ts, 1, greatest($now, $end)) OVER w, ts + to_microseconds($hold_us)) AS t1,
           -- after a state that ran out of its hold the time was unknown: the next state begins afresh
           -- (whichever older states a window happens to load)
           CASE WHEN lag(ts) OVER w + to_microseconds($hold_us) <= ts THEN 'unknown'
                ELSE lag(category) OVER w END AS prev_category
    FROM (
        SELECT sp.*, coalesce(sm.category, 'unknown') AS category
        FROM state_points sp
        LEFT JOIN machines mk USING (asset_id)  -- each machine's mapping: its site's, type's, tenant's
        LEFT JOIN state_map sm ON sm.map_key = mk.map_key AND sm.state = sp.state
    )
    WINDOW w AS (PARTITION BY asset_id ORDER BY ts)
),
span_pieces AS (
    -- each span cut at the planned pieces it overlaps. Pieces never cross a UTC hour, so a span meets
    -- only the pieces of the hours it covers: an equality join on the hour, not a range join over all
    -- of a window's pieces (most spans lie within one hour; the others are unnested into their hours)
    SELECT s.asset_id, s.state, s.reason, s.category, s.prev_category, s.ts, s.t0, s.t1,
           p.start_ts AS piece_start, p.end_ts AS piece_end,
           epoch(least(s.t1, p.end_ts)) - epoch(greatest(s.t0, p.start_ts)) AS dur_s
    FROM (
        SELECT *, epoch_us(t0) // 3600000000 AS hour_no FROM state_spans
        WHERE t1 > t0 AND epoch_us(t0) // 3600000000 = (epoch_us(t1) - 1) // 3600000000
        UNION ALL
        SELECT *, unnest(range(epoch_us(t0) // 3600000000, (epoch_us(t1) - 1) // 3600000000 + 1)) AS hour_no
        FROM state_spans
        WHERE t1 > t0 AND epoch_us(t0) // 3600000000 <> (epoch_us(t1) - 1) // 3600000000
    ) s
    JOIN machines m USING (asset_id)
    JOIN planned p ON p.site_id = m.site_id AND p.hour_no = s.hour_no AND s.t0 < p.end_ts AND s.t1 > p.start_ts
),
