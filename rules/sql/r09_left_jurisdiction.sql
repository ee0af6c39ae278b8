-- R09 left the jurisdiction: a member's hukou was deregistered as 迁出 (2) or 出国定居 (4) 90 days or
-- more before the as-of date.
WITH
params AS (SELECT district, left_jurisdiction_status, left_jurisdiction_grace_days AS grace FROM flags.params),
households AS (SELECT household_id, district FROM flags.household),
moved AS (
    SELECT h.*, p.grace FROM linked.hukou h
    JOIN households USING (household_id) JOIN params p USING (district)
    WHERE h.kin = 'member' AND list_contains(p.left_jurisdiction_status, trim(h.person_status))
)
SELECT household_id, person_id AS member_id, 'hukou' AS source, 'hukou' AS record_table,
       '人员状态 ' || trim(person_status) || ' ' || strftime(deregistration_date, '%Y-%m-%d') AS record_key,
       _delivery_date AS source_as_of,
       json_object('人员状态', person_status, '注销日期', deregistration_date) AS trigger,
       '户籍已' || CASE trim(person_status) WHEN '2' THEN '迁出注销' ELSE '出国定居注销' END || '，注销日期 ' ||
       strftime(deregistration_date, '%Y-%m-%d') || '（hukou 截至 ' || strftime(_delivery_date, '%Y-%m-%d') || '）' AS evidence,
       link_method, link_score, link_agreed
FROM moved
WHERE deregistration_date <= getvariable('as_of') - grace * INTERVAL 1 DAY;
