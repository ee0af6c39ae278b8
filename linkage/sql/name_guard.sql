-- An exact ID match whose name clearly disagrees is not a link: it goes to linked.review with both
-- names (an ID keyed onto the wrong person). Repaired links were name-checked by linkage/repair.py. Agreeing-but-different names keep the link, scored lower.
INSERT INTO linked.review
SELECT '{table}' AS record_table, t._file, t._row, t.household_id, t.person_id, t.name AS source_name,
       t.person_name AS roster_name, v.score, 'ID matches but the name disagrees' AS reason
FROM {links} t
JOIN name_verdicts v ON v.source_name = t.name AND v.roster_name = t.person_name
WHERE v.what = 'none' AND t.link_method = 'id_exact';

DELETE FROM {links} t
USING name_verdicts v
WHERE v.source_name = t.name AND v.roster_name = t.person_name AND v.what = 'none' AND t.link_method = 'id_exact';

UPDATE {links} t
SET link_score = round(0.9 + 0.1 * v.score, 3), link_agreed = 'id, name ' || v.what || ' ' || v.score
FROM name_verdicts v
WHERE v.source_name = t.name AND v.roster_name = t.person_name AND v.what <> 'none' AND t.link_method = 'id_exact';
