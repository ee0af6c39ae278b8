-- One verdict per repair request (id_key, name): the repaired ID when exactly one known person is a
-- candidate and agrees in name, else the reason it stays unrepaired. Inputs: repair_request,
-- repair_fit (candidates that are known persons), repair_verdicts (name agreement per distinct pair).
-- {repaired_weight} / {excel_weight} are substituted by linkage/repair.py.
CREATE OR REPLACE TABLE linked.id_repair AS
WITH
judged AS (
    SELECT q.id_key, q.name, q.id_status, q.excel_prefix, f.cand_id, f.detail, v.score, v.what,
           coalesce(v.what NOT IN ('none', 'missing'), false) AS fits
    FROM repair_request q
    LEFT JOIN repair_fit f USING (id_key)
    LEFT JOIN repair_verdicts v ON v.source_name = q.name AND v.person_name = f.person_name
),
per AS (
    SELECT id_key, name, id_status, any_value(excel_prefix) AS excel_prefix,
           count(DISTINCT cand_id) AS n_known,
           count(DISTINCT cand_id) FILTER (WHERE fits) AS n_fit,
           max(cand_id) FILTER (WHERE fits) AS fit_id,
           coalesce(bool_or(what = 'missing'), false) AS name_missing
    FROM judged
    GROUP BY id_key, name, id_status
),
best AS (
    SELECT j.id_key, j.name, j.id_status, max(j.score) AS name_score, arg_max(j.what, j.score) AS name_what,
           min(j.detail) AS detail
    FROM judged j JOIN per p USING (id_key, name, id_status)
    WHERE p.n_fit = 1 AND j.fits AND j.cand_id = p.fit_id
    GROUP BY ALL
)
SELECT p.id_key, p.name, p.id_status,
       CASE WHEN p.n_fit = 1 THEN p.fit_id END AS repaired_id,
       b.detail, b.name_score, b.name_what,
       CASE WHEN p.n_fit = 1 THEN round(CASE WHEN p.id_status = 'excel_damaged' THEN {excel_weight}
                                             ELSE {repaired_weight} END * b.name_score, 3) END AS link_score,
       CASE WHEN p.n_fit = 1 THEN NULL
            WHEN p.id_status = 'excel_damaged' AND p.excel_prefix IS NULL
                THEN 'Excel scientific notation: only the area code survives, cannot link on ID'
            WHEN p.n_fit > 1 THEN 'ID repair ambiguous: ' || p.n_fit || ' known persons fit with an agreeing name'
            WHEN p.n_known > 0 AND p.name_missing THEN 'ID repair needs a name, none delivered'
            WHEN p.n_known > 0 THEN 'ID repair candidate is a known person but the name disagrees'
            WHEN p.id_status = 'bad_check'
                THEN 'check digit fails; no single typo or adjacent transposition gives a known person'
            WHEN p.id_status = 'excel_damaged' THEN 'Excel number: no known person with these first 15 digits'
            ELSE 'ID belongs to nobody known, nor do its old/new area code variants'
       END AS reason
FROM per p LEFT JOIN best b USING (id_key, name, id_status);
