-- Source records of one staging table tied to household persons: by exact (normalised) ID, and, for a
-- record whose ID linked.id_repair repaired, by the repaired ID (link_table_repaired.sql, left out for a
-- table that cannot be repaired). {target} (TABLE linked.<table>), {records} (staging.<table>, or the records
-- linkage/incremental.py relinks) and that part are substituted by linkage/link.py.
CREATE OR REPLACE {target} AS
WITH
persons AS (
    SELECT household_id, person_id, person_name, kin FROM linked.household_person
)
SELECT
    r.*,
    p.household_id,
    p.person_id,
    p.person_name,
    p.kin,
    'id_exact' AS link_method,
    CAST(1.0 AS DOUBLE) AS link_score,
    CASE WHEN r.id_status = 'upgraded15' THEN 'id (15→18 upgraded)' ELSE 'id' END
        || CASE WHEN r.name_norm = replace(p.person_name, ' ', '') THEN ', name' ELSE '' END AS link_agreed
FROM {records} r
JOIN persons p ON p.person_id = r.id_norm
{repaired};
