-- R02 vehicle: a member owns a vehicle held on the as-of date: registered on or before it and ZT has
-- none of the not-held letters (B 转出, C 被盗抢, E 注销, M 强制注销, P 报废).
-- Exempt: plate types 07, 08, 13, 14; vehicles owned by organisations (document type not 居民身份证).
WITH
params AS (SELECT district, vehicle_not_held_status, vehicle_exempt_plate_types, vehicle_person_doc_types
           FROM flags.params),
households AS (SELECT household_id, district FROM flags.household),
vehicles AS (
    SELECT v.*, lpad(trim(v.plate_type), 2, '0') AS plate_code,
           string_split(regexp_replace(upper(coalesce(v.status, '')), '[^A-Z]', '', 'g'), '') AS status_letters
    FROM linked.vehicle v
    WHERE v.kin = 'member'
),
held AS (
    SELECT v.* FROM vehicles v JOIN households USING (household_id) JOIN params USING (district)
    WHERE list_contains(vehicle_person_doc_types, upper(trim(v.owner_doc_type)))
      AND NOT list_contains(vehicle_exempt_plate_types, v.plate_code)
      AND NOT list_has_any(v.status_letters, vehicle_not_held_status)
      AND v.first_registration <= getvariable('as_of')
)
SELECT household_id, person_id AS member_id, 'vehicle' AS source, 'vehicle' AS record_table,
       plate_code || ' ' || plate_no AS record_key, _delivery_date AS source_as_of,
       json_object('号牌号码', plate_no, '号牌种类', plate_code, '状态', status,
                   '初次登记', first_registration) AS trigger,
       '名下机动车 ' || plate_no || '（号牌种类 ' || plate_code || '，状态 ' || coalesce(status, '') ||
       '，初次登记 ' || strftime(first_registration, '%Y-%m-%d') || '）（vehicle 截至 ' ||
       strftime(_delivery_date, '%Y-%m-%d') || '）' AS evidence,
       link_method, link_score, link_agreed
FROM held;
