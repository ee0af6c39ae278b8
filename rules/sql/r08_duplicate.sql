-- R08 duplicate: the same person is listed in two households, twice in one household, or under both
-- dibao (城市低保 / 农村低保) and tekun (特困供养).
WITH
roster AS (SELECT * FROM staging.roster WHERE id_norm IS NOT NULL),
per_person AS (
    SELECT id_norm, count(DISTINCT household_id) AS households, count(*) AS listings,
           bool_or(category = '特困供养') AS tekun, bool_or(category IN ('城市低保', '农村低保')) AS dibao
    FROM roster GROUP BY id_norm
),
-- listed in two households, twice in one (more listings than households: for one id_norm, a distinct
-- household is a distinct household-and-ID pair), or under both dibao and tekun
duplicated AS (
    SELECT * FROM per_person WHERE households > 1 OR listings > households OR (tekun AND dibao)
),
-- the list of households built only for the persons flagged (the text is the costly part)
listed AS (
    SELECT d.*, l.household_list
    FROM duplicated d
    JOIN (SELECT id_norm, string_agg(DISTINCT household_id, '、' ORDER BY household_id) AS household_list
          FROM roster SEMI JOIN duplicated USING (id_norm) GROUP BY id_norm) l USING (id_norm)
)
SELECT r.household_id, r.id_norm AS member_id, 'roster' AS source, 'roster' AS record_table,
       '名册 ' || d.household_list || ' ×' || d.listings AS record_key, r._delivery_date AS source_as_of,
       json_object('家庭编号', d.household_list, '登记次数', d.listings) AS trigger,
       '同一身份证号在名册中登记 ' || d.listings || ' 次，涉及家庭 ' || d.household_list ||
       CASE WHEN d.tekun AND d.dibao THEN '，同时享受低保与特困' ELSE '' END ||
       '（roster 截至 ' || strftime(r._delivery_date, '%Y-%m-%d') || '）' AS evidence,
       'id_exact' AS link_method, 1.0 AS link_score, 'id' AS link_agreed
FROM roster r JOIN listed d USING (id_norm);
