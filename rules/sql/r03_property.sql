-- R03 property: members together hold, with 权属状态 现势 on the as-of date, any unit for 商业/办公/工业,
-- or two or more 住宅 units. Units are counted by 不动产单元号 (one unit co-owned by two members is one
-- unit; a share counts). 车位 and 其他 are ignored.
WITH
params AS (SELECT district, property_current_status, property_commercial_uses, property_residential_use,
                  property_max_residential_units FROM flags.params),
households AS (SELECT household_id, district FROM flags.household),
held AS (
    SELECT o.*, p.*
    FROM linked.property_owner o
    JOIN households USING (household_id) JOIN params p USING (district)
    WHERE o.kin = 'member'
      AND list_contains(p.property_current_status, trim(o.title_status))
      AND o.registration_date <= getvariable('as_of')
),
per_household AS (
    SELECT household_id,
           count(DISTINCT unit_no) FILTER (WHERE trim(planned_use) = property_residential_use) AS homes,
           count(DISTINCT unit_no) FILTER (WHERE list_contains(property_commercial_uses, trim(planned_use))) AS commercial,
           any_value(property_max_residential_units) AS max_homes
    FROM held GROUP BY household_id
),
flagged AS (
    SELECT household_id, homes, commercial FROM per_household WHERE commercial > 0 OR homes > max_homes
)
SELECT h.household_id, h.person_id AS member_id, 'property' AS source, 'property_owner' AS record_table,
       h.unit_no || ' ' || coalesce(h.certificate_no, '') AS record_key, h._delivery_date AS source_as_of,
       json_object('不动产单元号', h.unit_no, '规划用途', h.planned_use, '住宅套数', f.homes,
                   '非住宅套数', f.commercial) AS trigger,
       '不动产 ' || h.unit_no || '（' || h.planned_use || '，' || h.title_status || '，登记 ' ||
       strftime(h.registration_date, '%Y-%m-%d') || '）；家庭现势住宅 ' || f.homes || ' 套、商业办公工业 ' ||
       f.commercial || ' 套（property 截至 ' || strftime(h._delivery_date, '%Y-%m-%d') || '）' AS evidence,
       h.link_method, h.link_score, h.link_agreed
FROM held h JOIN flagged f USING (household_id)
WHERE trim(h.planned_use) = h.property_residential_use
   OR list_contains(h.property_commercial_uses, trim(h.planned_use));
