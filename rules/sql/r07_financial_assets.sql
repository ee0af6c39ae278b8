-- R07 financial assets: the members' bank balances on the query date add up to more than
-- 24 × standard × 家庭人口数. Relatives' accounts do not count.
WITH
params AS (SELECT district, financial_asset_months FROM flags.params),
households AS (SELECT household_id, district, household_size, standard FROM flags.household),
accounts AS (SELECT * FROM linked.bank WHERE kin = 'member'),
per_household AS (
    SELECT a.household_id, sum(a.balance) AS total, count(*) AS n_accounts,
           any_value(h.household_size) AS household_size, any_value(h.standard) AS standard,
           any_value(p.financial_asset_months) AS months,
           any_value(p.financial_asset_months) * any_value(h.standard) * any_value(h.household_size) AS limit_amount
    FROM accounts a JOIN households h USING (household_id) JOIN params p USING (district)
    GROUP BY a.household_id
),
over_limit AS (SELECT * FROM per_household WHERE total > limit_amount),
-- each member's accounts described only in the households over their limit (the text is the costly part)
per_member AS (
    SELECT household_id, person_id, sum(balance) AS member_total, max(_delivery_date) AS delivered,
           max(query_date) AS queried,
           string_agg(coalesce(institution, '') || ' ' || coalesce(account_type, ''), '、'
                      ORDER BY institution, account_type) AS keys,
           any_value(link_method) AS link_method, min(link_score) AS link_score, any_value(link_agreed) AS link_agreed
    FROM accounts SEMI JOIN over_limit USING (household_id) GROUP BY ALL
)
SELECT m.household_id, m.person_id AS member_id, 'bank' AS source, 'bank' AS record_table,
       m.keys AS record_key, m.delivered AS source_as_of,
       json_object('成员余额合计', round(m.member_total, 2), '家庭余额合计', round(h.total, 2),
                   '账户数', h.n_accounts, '限额', h.limit_amount, '查询日期', m.queried) AS trigger,
       '家庭成员金融资产合计 ' || round(h.total, 2) || ' 元，高于 ' || h.months || ' × ' || h.standard || ' × ' ||
       h.household_size || ' 人 = ' || h.limit_amount || ' 元；本成员 ' || round(m.member_total, 2) ||
       ' 元（bank 查询日 ' || coalesce(strftime(m.queried, '%Y-%m-%d'), '未记录') || '）' AS evidence,
       m.link_method, m.link_score, m.link_agreed
FROM per_member m JOIN over_limit h USING (household_id)
WHERE m.member_total > 0;
