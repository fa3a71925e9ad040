-- The state spans of a tenant's machines around the window [$start, $end): each state lasts from its
-- `ts` to the machine's next state (the newest one until now), with its time category and the category
-- before it. Shared by the OEE and the downtime queries (`kpi/oee.py` composes them).
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
           lead(ts, 1, greatest($now, $end)) OVER w AS t1,
           lag(category) OVER w AS prev_category
    FROM (
        SELECT sp.*, coalesce(sm.category, 'unknown') AS category
        FROM state_points sp
        LEFT JOIN machines mk USING (asset_id)  -- each machine's mapping: its site's, type's, tenant's
        LEFT JOIN state_map sm ON sm.map_key = mk.map_key AND sm.state = sp.state
    )
    WINDOW w AS (PARTITION BY asset_id ORDER BY ts)
),
