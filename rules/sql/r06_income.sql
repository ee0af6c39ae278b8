-- R06 income: the household's monthly income per person, averaged over the last 12 months, is above its
-- standard. A member's monthly income = earnings × (1 − deduction) + benefits / n + other tax items / n,
-- where earnings = greatest of (a) earning tax items / n, (b) employee-scheme contribution base once per
-- month / n, (c) the base of a 正常 housing-fund account paid within the last 3 months.
-- The window is the n = income_months whole months before the as-of month (the as-of month itself is not
-- over yet, and a delivery dated in it holds none of its income): as of 2026-11-20, 2025-11 to 2026-10.
-- Residents' schemes and 灵活就业 / 城乡居民 payers are not evidence of earnings.
WITH
params AS (SELECT *, date_trunc('month', getvariable('as_of')) AS window_end,
                  date_trunc('month', getvariable('as_of')) - income_months * INTERVAL 1 MONTH AS window_start
           FROM flags.params),
households AS (SELECT household_id, district, household_size, standard FROM flags.household),
members AS (
    SELECT DISTINCT hp.household_id, hp.person_id, h.district
    FROM linked.household_person hp JOIN households h USING (household_id)
    WHERE hp.kin = 'member'
),
tax AS (
    SELECT t.household_id, t.person_id,
           sum(t.income_amount) FILTER (WHERE list_contains(p.income_earning_tax_items, trim(t.income_item)))
               / any_value(p.income_months) AS tax_earnings,
           sum(t.income_amount) FILTER (WHERE NOT list_contains(p.income_earning_tax_items, trim(t.income_item)))
               / any_value(p.income_months) AS other_income
    FROM linked.tax t JOIN members m USING (household_id, person_id) JOIN params p USING (district)
    WHERE t.kin = 'member'
      AND t.period_end >= p.window_start AND t.period_start < p.window_end
    GROUP BY ALL
),
contribution_months AS (
    SELECT c.household_id, c.person_id, c.month, p.income_months, max(c.contribution_base) AS base
    FROM linked.si_contribution c JOIN members m USING (household_id, person_id) JOIN params p USING (district)
    WHERE c.kin = 'member'
      AND list_contains(p.income_employee_schemes, trim(c.scheme))
      AND NOT list_contains(p.income_non_earning_payer_types, trim(c.payer_type))
      AND c.month >= p.window_start AND c.month < p.window_end
    GROUP BY ALL
),
contributions AS (
    SELECT household_id, person_id, sum(base) / any_value(income_months) AS si_earnings
    FROM contribution_months GROUP BY household_id, person_id
),
housing_fund AS (
    SELECT f.household_id, f.person_id, max(f.contribution_base) AS hf_earnings
    FROM linked.housing_fund f JOIN members m USING (household_id, person_id) JOIN params p USING (district)
    WHERE f.kin = 'member'
      AND list_contains(p.income_housing_fund_active_status, trim(f.account_status))
      AND f.last_paid_month >= date_trunc('month', getvariable('as_of'))
                               - p.income_housing_fund_recent_months * INTERVAL 1 MONTH
    GROUP BY ALL
),
benefits AS (
    SELECT b.household_id, b.person_id, sum(b.amount) / any_value(p.income_months) AS benefits
    FROM linked.si_benefit b JOIN members m USING (household_id, person_id) JOIN params p USING (district)
    WHERE b.kin = 'member'
      AND b.month >= p.window_start AND b.month < p.window_end
    GROUP BY b.household_id, b.person_id
),
member_income AS (
    SELECT m.household_id, m.person_id,
           coalesce(t.tax_earnings, 0) AS tax_earnings, coalesce(c.si_earnings, 0) AS si_earnings,
           coalesce(f.hf_earnings, 0) AS hf_earnings,
           greatest(coalesce(t.tax_earnings, 0), coalesce(c.si_earnings, 0), coalesce(f.hf_earnings, 0)) AS earnings,
           coalesce(b.benefits, 0) AS benefits, coalesce(t.other_income, 0) AS other_income,
           p.income_employment_cost_deduction AS deduction
    FROM members m
    JOIN params p USING (district)
    LEFT JOIN tax t USING (household_id, person_id)
    LEFT JOIN contributions c USING (household_id, person_id)
    LEFT JOIN housing_fund f USING (household_id, person_id)
    LEFT JOIN benefits b USING (household_id, person_id)
),
member_total AS (
    SELECT *, earnings * (1 - deduction) + benefits + other_income AS monthly_income FROM member_income
),
household_total AS (
    SELECT h.household_id, h.household_size, h.standard, sum(mt.monthly_income) AS total
    FROM member_total mt JOIN households h USING (household_id)
    GROUP BY h.household_id, h.household_size, h.standard
),
household_per_person AS (
    SELECT *, total / nullif(household_size, 0) AS per_person FROM household_total
)
SELECT mt.household_id, mt.person_id AS member_id, 'income' AS source, 'tax,si_contribution,housing_fund,si_benefit' AS record_table,
       '收入来源 ' || concat_ws('、', CASE WHEN mt.tax_earnings > 0 THEN '个税工薪经营' END,
           CASE WHEN mt.si_earnings > 0 THEN '社保缴费' END, CASE WHEN mt.hf_earnings > 0 THEN '公积金' END,
           CASE WHEN mt.benefits > 0 THEN '社保待遇' END, CASE WHEN mt.other_income > 0 THEN '其他所得' END)
           AS record_key, getvariable('as_of') AS source_as_of,
       json_object('个税工薪经营月均', round(mt.tax_earnings, 2), '社保缴费基数月均', round(mt.si_earnings, 2),
                   '公积金缴存基数', round(mt.hf_earnings, 2), '取最大值', round(mt.earnings, 2),
                   '扣除就业成本比例', mt.deduction, '养老金失业金月均', round(mt.benefits, 2),
                   '其他所得月均', round(mt.other_income, 2), '成员月收入', round(mt.monthly_income, 2),
                   '家庭月收入', round(ht.total, 2), '家庭人口数', ht.household_size,
                   '人均月收入', round(ht.per_person, 2), '保障标准', ht.standard) AS trigger,
       '成员月收入 ' || round(mt.monthly_income, 2) || ' 元 = max(个税 ' || round(mt.tax_earnings, 2) ||
       ', 社保基数 ' || round(mt.si_earnings, 2) || ', 公积金基数 ' || round(mt.hf_earnings, 2) || ') × (1−' ||
       mt.deduction || ') + 待遇 ' || round(mt.benefits, 2) || ' + 其他 ' || round(mt.other_income, 2) ||
       '；家庭月收入 ' || round(ht.total, 2) || ' 元 ÷ ' || ht.household_size || ' 人 = ' ||
       round(ht.per_person, 2) || ' 元，高于标准 ' || ht.standard || ' 元' AS evidence,
       'id_exact' AS link_method, 1.0 AS link_score, 'id' AS link_agreed
FROM member_total mt JOIN household_per_person ht USING (household_id)
WHERE ht.per_person > ht.standard AND mt.monthly_income > 0;
