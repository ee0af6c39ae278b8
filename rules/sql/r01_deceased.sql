-- R01 deceased: a member died (hukou 人员状态 1, or a cremation record) 30 days or more before the
-- as-of date and is still on the roster.
WITH
params AS (SELECT district, deceased_grace_days AS grace, deceased_status FROM flags.params),
households AS (SELECT household_id, district FROM flags.household),
hukou_deaths AS (
    SELECT household_id, person_id, 'hukou' AS source, 'hukou' AS record_table, _file, _row,
           _delivery_date, deregistration_date AS died, link_method, link_score, link_agreed,
           '户籍已死亡注销' AS found
    FROM linked.hukou
    JOIN households USING (household_id) JOIN params USING (district)
    WHERE kin = 'member' AND list_contains(deceased_status, person_status)
),
cremations AS (
    SELECT household_id, person_id, 'cremation', 'cremation', _file, _row,
           _delivery_date, death_date, link_method, link_score, link_agreed, '有火化记录'
    FROM linked.cremation
    WHERE kin = 'member'
),
deaths AS (SELECT * FROM hukou_deaths UNION ALL SELECT * FROM cremations)
SELECT d.household_id, d.person_id AS member_id, d.source, d.record_table,
       d.found || ' ' || coalesce(strftime(d.died, '%Y-%m-%d'), '') AS record_key, d._delivery_date AS source_as_of,
       json_object('死亡日期', d.died) AS trigger,
       d.found || '，死亡日期 ' || coalesce(strftime(d.died, '%Y-%m-%d'), '未记录')
           || '（' || d.source || ' 截至 ' || strftime(d._delivery_date, '%Y-%m-%d') || '）' AS evidence,
       d.link_method, d.link_score, d.link_agreed
FROM deaths d
JOIN households USING (household_id) JOIN params USING (district)
WHERE d.died IS NULL OR d.died <= getvariable('as_of') - grace * INTERVAL 1 DAY;
