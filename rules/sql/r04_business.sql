-- R04 business: a member is 法定代表人, 股东, 投资人, 经营者 or 执行事务合伙人 of an entity whose 登记状态 is
-- 存续 on the as-of date. Exempt: 个体工商户 and 农民专业合作社 with 注册资本 of 10 万元 or less, or none
-- recorded. 董事, 监事 and 经理 alone do not count.
WITH
params AS (SELECT district, business_active_status, business_counting_roles, business_small_exempt_types,
                  business_small_capital_wan FROM flags.params),
households AS (SELECT household_id, district FROM flags.household),
entities AS (SELECT * FROM staging.business_entity),
roles AS (
    SELECT p.*, e.entity_name, e.entity_type, e.registered_capital_wan, e.registration_status,
           e.established_date, prm.*
    FROM linked.business_person p
    JOIN entities e USING (uscc)
    JOIN households USING (household_id) JOIN params prm USING (district)
    WHERE p.kin = 'member'
),
counting AS (
    SELECT * FROM roles
    WHERE list_contains(business_counting_roles, trim(roles.role))
      AND list_contains(business_active_status, trim(registration_status))
      AND (established_date IS NULL OR established_date <= getvariable('as_of'))
      AND NOT (list_contains(business_small_exempt_types, trim(entity_type))
               AND coalesce(registered_capital_wan, 0) <= business_small_capital_wan)
)
SELECT household_id, person_id AS member_id, 'business' AS source, 'business_person' AS record_table,
       uscc || ' ' || role AS record_key, _delivery_date AS source_as_of,
       json_object('统一社会信用代码', uscc, '企业名称', entity_name, '市场主体类型', entity_type,
                   '注册资本万元', registered_capital_wan, '角色', role) AS trigger,
       '任 ' || entity_name || '（' || entity_type || '，注册资本 ' ||
       coalesce(CAST(registered_capital_wan AS VARCHAR), '未记录') || ' 万元，' || registration_status ||
       '）' || role || '（business 截至 ' || strftime(_delivery_date, '%Y-%m-%d') || '）' AS evidence,
       link_method, link_score, link_agreed
FROM counting;
