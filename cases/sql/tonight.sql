-- Tonight's flags folded to one row per household and rule: the strongest hit speaks for the case,
-- the fingerprint of all its source records tells whether the evidence changed since a refutation.
CREATE OR REPLACE TEMP TABLE tonight AS
WITH
hits AS (SELECT * FROM flags.hits WHERE run_date = getvariable('run_date')),
households AS (SELECT * FROM flags.household),
member_names AS (
    SELECT household_id, person_id, any_value(person_name) AS person_name
    FROM linked.household_person GROUP BY ALL
),
ranked AS (
    -- ties (two members co-owning one unit share its record_key) are broken by member and evidence, so the
    -- member who speaks for the case does not depend on the order DuckDB happens to read the hits in
    SELECT h.*, row_number() OVER (PARTITION BY h.household_id, h.rule
                                   ORDER BY h.link_score DESC, h.record_key, h.member_id, h.evidence) AS rank_in_case,
           count(*) OVER (PARTITION BY h.household_id, h.rule) AS n_hits,
           list(h.record_key ORDER BY h.link_score DESC, h.record_key)
               OVER (PARTITION BY h.household_id, h.rule) AS record_keys,
           -- record_key is the record's business key (plate, unit, entity and role …), never its file and
           -- row: a redelivery that only reorders rows is not new evidence for a refuted case
           md5(string_agg(h.source || ':' || h.member_id || ':' || h.record_key, '|'
                          ORDER BY h.source, h.member_id, h.record_key)
               OVER (PARTITION BY h.household_id, h.rule)) AS fingerprint,
           bool_and(h.link_method = 'fuzzy') OVER (PARTITION BY h.household_id, h.rule) AS all_fuzzy
    FROM hits h
)
SELECT r.rule || '-' || r.household_id AS case_id, r.household_id, r.rule,
       hh.district, hh.township, hh.category,
       r.member_id, coalesce(mn.person_name, '') AS member_name,
       r.evidence || CASE WHEN r.n_hits > 1 THEN '；另有 ' || (r.n_hits - 1) || ' 条记录：'
           || array_to_string(r.record_keys[2:4], '、') || CASE WHEN r.n_hits > 4 THEN ' 等' ELSE '' END
           ELSE '' END AS evidence,
       r.fingerprint, r.link_method AS link, r.link_score, r.all_fuzzy
FROM ranked r
LEFT JOIN households hh USING (household_id)
LEFT JOIN member_names mn ON mn.household_id = r.household_id AND mn.person_id = r.member_id
WHERE r.rank_in_case = 1;
