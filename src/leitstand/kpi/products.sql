-- composed after the CTEs of spans.sql and pieces.sql (without its final SELECT)
-- Quantities and ideal times per product over the machines in `machines` and the planned time of
-- [$start, $end), counted as the OEE counts them (a count at ts covers the interval ending at ts).
SELECT k.product_id,
       count(DISTINCT k.asset_id)::BIGINT AS machines,
       sum(k.produced)::BIGINT AS produced,
       sum(k.produced - k.scrap - k.rework)::BIGINT AS good,
       sum(k.scrap)::BIGINT AS scrap,
       sum(k.rework)::BIGINT AS rework,
       coalesce(sum(k.produced * coalesce(ic.ideal_cycle_s, m.ideal_cycle_s)), 0) AS ideal_s,
       coalesce(sum((k.produced - k.scrap - k.rework) * coalesce(ic.ideal_cycle_s, m.ideal_cycle_s)), 0)
           AS good_ideal_s,
       sum(CASE WHEN coalesce(ic.ideal_cycle_s, m.ideal_cycle_s) IS NULL THEN k.produced ELSE 0 END)::BIGINT
           AS units_without_ideal_cycle
FROM piece_counts k
JOIN machines m USING (asset_id)
LEFT JOIN ideal_cycle ic ON ic.asset_id = k.asset_id AND ic.product_id = k.product_id
GROUP BY k.product_id
ORDER BY ideal_s DESC, k.product_id NULLS LAST
