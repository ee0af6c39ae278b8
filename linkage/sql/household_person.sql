-- Every person relevant to a roster household: its members (from the roster) and its relatives
-- (people in the same hukou household, same 户号, as any member; POLICY.md "Who counts").
-- Kinship comes only from 户号, never from names or addresses.
-- A member whose roster ID fails its check digit is taken under the ID linked.id_repair found for it
-- (one known person fits and the name agrees); one that cannot be repaired keeps its cleaned ID as
-- delivered (it then finds no relatives and links nothing) and is listed in linked.unlinked.
-- {id_key} is substituted by linkage/link.py (linkage.repair.id_key('r')).
CREATE OR REPLACE TABLE linked.household_person AS
WITH
members AS (
    SELECT DISTINCT r.household_id,
           coalesce(r.id_norm, fx.repaired_id, nullif(id_clean(CAST(r.id_number AS VARCHAR)), '')) AS person_id,
           r.name AS person_name, 'member' AS kin, CAST(NULL AS VARCHAR) AS hukou_no
    FROM staging.roster r
    LEFT JOIN linked.id_repair fx
           ON r.id_norm IS NULL AND fx.id_key = {id_key} AND fx.name = coalesce(CAST(r.name AS VARCHAR), '')
          AND fx.id_status = r.id_status
    WHERE coalesce(r.id_norm, fx.repaired_id, nullif(id_clean(CAST(r.id_number AS VARCHAR)), '')) IS NOT NULL
),
member_hukou AS (
    SELECT DISTINCT m.household_id, h.hukou_no
    FROM members m
    JOIN staging.hukou h ON h.id_norm = m.person_id
    WHERE coalesce(h.hukou_no, '') <> ''
),
relatives AS (
    SELECT DISTINCT mh.household_id, h.id_norm AS person_id, h.name AS person_name, 'relative' AS kin,
           mh.hukou_no
    FROM member_hukou mh
    JOIN staging.hukou h ON h.hukou_no = mh.hukou_no
    WHERE h.id_norm IS NOT NULL
      AND h.id_norm NOT IN (SELECT person_id FROM members m WHERE m.household_id = mh.household_id)
)
SELECT * FROM members
UNION ALL
SELECT * FROM relatives;
