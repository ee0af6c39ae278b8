-- R05 payroll relative: a member or a relative (same 户号, see linked.household_person) is on the fiscal
-- payroll with 人员状态 在职 or 离退休.
WITH
params AS (SELECT district, payroll_counting_status FROM flags.params),
households AS (SELECT household_id, district FROM flags.household),
on_payroll AS (
    SELECT p.* FROM linked.payroll p
    JOIN households USING (household_id) JOIN params USING (district)
    WHERE list_contains(payroll_counting_status, trim(p.staff_status))
)
SELECT household_id, person_id AS member_id, 'payroll' AS source, 'payroll' AS record_table,
       coalesce(employer, '') || ' ' || kin AS record_key, _delivery_date AS source_as_of,
       json_object('单位名称', employer, '单位性质', employer_type, '人员状态', staff_status,
                   '关系', kin) AS trigger,
       CASE kin WHEN 'member' THEN '家庭成员' ELSE '同户亲属' END || '为财政供养人员：' ||
       coalesce(employer, '') || '（' || coalesce(employer_type, '') || '，' || staff_status ||
       '）（payroll 截至 ' || strftime(_delivery_date, '%Y-%m-%d') || '）' AS evidence,
       link_method, link_score, link_agreed
FROM on_payroll;
