-- Source records of one staging table tied to household persons by exact (normalised) ID.
-- {table} is substituted by linkage/link.py; the output is linked.{table}.
CREATE OR REPLACE TABLE linked.{table} AS
WITH
records AS (
    SELECT * FROM staging.{table} WHERE id_norm IS NOT NULL
),
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
    1.0 AS link_score,
    CASE WHEN r.id_status = 'upgraded15' THEN 'id (15→18 upgraded)' ELSE 'id' END
        || CASE WHEN r.name_norm = replace(p.person_name, ' ', '') THEN ', name' ELSE '' END AS link_agreed
FROM records r
JOIN persons p ON p.person_id = r.id_norm;
