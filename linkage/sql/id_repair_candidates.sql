-- Candidate repairs for the IDs in repair_request (id_key, id_status): every ID one defect away that
-- passes its check digit. Output: temp table repair_candidate (id_key, cand_id, detail).
-- GB 11643 check: S = Σ w_p·d_p (p = 1..17) mod 11 must equal r, the residue the check character stands
-- for ('10X98765432'[r]). A substitution d_p → v shifts S by w_p·(v − d_p), so the one v that fixes S is
-- d_p + (r − S)·w_p⁻¹ mod 11 (a repair only if it is a digit); a transposition of p, p+1 shifts it by
-- (w_p − w_{p+1})·(d_{p+1} − d_p). No candidate is recomputed from scratch.
CREATE OR REPLACE TEMP TABLE repair_candidate AS
WITH
pos AS (
    SELECT unnest(range(1, 18)) AS p,
           unnest([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]) AS w,
           unnest([9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2, 0]) AS w_next,
           unnest([8, 5, 10, 9, 7, 3, 6, 1, 2, 4, 8, 5, 10, 9, 7, 3, 6]) AS w_inv
),
bad AS (
    SELECT id_key,
           list_transform(range(1, 18), lambda i: ascii(substr(id_key, i, 1)) - 48) AS d,
           instr('10X98765432', substr(id_key, 18, 1)) - 1 AS r
    FROM (SELECT DISTINCT id_key FROM repair_request WHERE id_status = 'bad_check')
    WHERE regexp_full_match(id_key, '\d{17}[\dX]')
),
bad_s AS (
    SELECT id_key, d, r,
           (list_sum(list_transform(range(17), lambda i: d[i + 1] * [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2][i + 1])) % 11)::INTEGER AS s
    FROM bad
),
typo AS (
    SELECT id_key, p, (d[p] + ((r - s + 11) % 11) * w_inv) % 11 AS v
    FROM bad_s, pos
),
transposition AS (
    SELECT id_key, p
    FROM bad_s, pos
    WHERE p <= 16 AND d[p] <> d[p + 1]
      AND (((s + (w - w_next) * (d[p + 1] - d[p])) % 11) + 11) % 11 = r
)
SELECT id_key, substr(id_key, 1, p - 1) || v::VARCHAR || substr(id_key, p + 1) AS cand_id,
       'typo at ' || p AS detail
FROM typo WHERE v <= 9
UNION ALL
SELECT id_key, substr(id_key, 1, 17) || substr('10X98765432', (s + 1)::BIGINT, 1), 'typo in the check digit'
FROM bad_s
UNION ALL
SELECT id_key, substr(id_key, 1, p - 1) || substr(id_key, p + 1, 1) || substr(id_key, p, 1) || substr(id_key, p + 2),
       'transposition at ' || p || '–' || (p + 1)
FROM transposition
UNION ALL
-- the last digit swapped with the check character
SELECT id_key, substr(id_key, 1, 16) || substr(id_key, 18, 1) || substr(id_key, 17, 1), 'transposition at 17–18'
FROM bad
WHERE substr(id_key, 18, 1) BETWEEN '0' AND '9' AND substr(id_key, 17, 1) <> substr(id_key, 18, 1)
  AND id_check_char(substr(id_key, 1, 16) || substr(id_key, 18, 1)) = substr(id_key, 17, 1)
UNION ALL
-- a valid ID that is nobody known: the same birth date and sequence under an old/new code of its area
SELECT q.id_key, a.alias || substr(q.id_key, 7, 11) || id_check_char(a.alias || substr(q.id_key, 7, 11)),
       CASE a.direction WHEN 'old' THEN 'old area code of the division' ELSE 'new area code of the division' END
FROM (SELECT DISTINCT id_key FROM repair_request WHERE id_status IN ('valid', 'upgraded15')) q
JOIN linked.id_area_alias a ON a.code = substr(q.id_key, 1, 6)
UNION ALL
-- Excel number: 15 significant digits survive (the 15th may be rounded up, so one below is tried too)
SELECT id_key, prefix AS cand_id, 'Excel number, last 3 digits lost' AS detail
FROM (SELECT DISTINCT id_key, excel_prefix AS prefix FROM repair_request
      WHERE id_status = 'excel_damaged' AND excel_prefix IS NOT NULL)
UNION ALL
SELECT id_key, substr(prefix, 1, 14) || (ascii(substr(prefix, 15, 1)) - 49)::VARCHAR,
       'Excel number, last 3 digits lost (rounded)'
FROM (SELECT DISTINCT id_key, excel_prefix AS prefix FROM repair_request
      WHERE id_status = 'excel_damaged' AND excel_prefix IS NOT NULL)
WHERE substr(prefix, 15, 1) <> '0';
