-- The name guard on {links} (the ID links just made, a temp table), written to {target}. An exact ID match
-- whose name clearly disagrees is not a link: it goes to linked.review with both names (an ID keyed onto
-- the wrong person). Agreeing-but-different names keep the link, scored lower. Repaired links were
-- name-checked by linkage/repair.py. name_verdicts: each distinct (source name, person name) pair that
-- differs as written, with linkage.names.agreement's verdict.
INSERT INTO linked.review
SELECT '{table}' AS record_table, t._file, t._row, t.household_id, t.person_id, t.name AS source_name,
       t.person_name AS roster_name, v.score, 'ID matches but the name disagrees' AS reason
FROM {links} t
JOIN name_verdicts v ON v.source_name = t.name AND v.roster_name = t.person_name
WHERE v.what = 'none' AND t.link_method = 'id_exact';

-- One write of the guarded links (not a DELETE and an UPDATE of the written table, which cost DuckDB a
-- rewrite of every touched row group each).
CREATE OR REPLACE {target} AS
WITH guarded AS (
    SELECT t.*, CASE WHEN t.link_method = 'id_exact' THEN v.what END AS guard_what, v.score AS guard_score
    FROM {links} t
    LEFT JOIN name_verdicts v ON v.source_name = t.name AND v.roster_name = t.person_name
)
SELECT * EXCLUDE (guard_what, guard_score) REPLACE (
           CASE WHEN guard_what IS NOT NULL THEN round(0.9 + 0.1 * guard_score, 3) ELSE link_score END AS link_score,
           CASE WHEN guard_what IS NOT NULL THEN 'id, name ' || guard_what || ' ' || guard_score
                ELSE link_agreed END AS link_agreed)
FROM guarded
WHERE guard_what IS DISTINCT FROM 'none';
