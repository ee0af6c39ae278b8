-- Area codes that stand for the same place (GB/T 2260; /work/shared/reference/jingmen_division_codes.csv).
-- A code's successor edge is followed only when the code has a single successor (a renumbering or a
-- renamed/split-off division, e.g. 420802 东宝区 → 420804 掇刀区, 420821 京山县 → 420882 京山市);
-- codes with several successors (420800 荆门市 → its districts, 422401) are one-to-many and left out.
-- Closed transitively, both ways: linked.id_area_alias (code, alias, direction) where direction is
-- 'old' when `code` is an older code of `alias`'s place and 'new' when it is a newer one.
CREATE OR REPLACE TABLE linked.id_area_alias AS
WITH RECURSIVE
edge(code, successor) AS (VALUES
    ('420802', '420804'), ('420803', '420822'), ('420821', '420882'), ('421025', '420821'),
    ('421082', '420881'), ('422406', '421082'), ('422430', '420800'), ('422431', '422406'),
    ('422432', '421025')),
fwd(code, successor) AS (
    SELECT code, successor FROM edge
    UNION
    SELECT f.code, e.successor FROM fwd f JOIN edge e ON e.code = f.successor
)
SELECT code, successor AS alias, 'old' AS direction FROM fwd
UNION ALL
SELECT successor AS code, code AS alias, 'new' AS direction FROM fwd;
