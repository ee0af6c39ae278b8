UNION ALL
SELECT
    r.*,
    p.household_id,
    p.person_id,
    p.person_name,
    p.kin,
    'id_repaired' AS link_method,
    CAST(fx.link_score AS DOUBLE) AS link_score,
    'id repaired: ' || fx.detail || '; name agrees ('
        || CASE fx.name_what WHEN 'exact' THEN 'exact' ELSE fx.name_what || ' ' || fx.name_score END || ')'
        || CASE WHEN fx.id_status = 'excel_damaged' THEN '; birth date agrees' ELSE '' END AS link_agreed
FROM {records} r
JOIN linked.id_repair fx
  ON fx.id_key = {id_key} AND fx.name = coalesce(CAST(r.name AS VARCHAR), '') AND fx.id_status = r.id_status
JOIN persons p ON p.person_id = fx.repaired_id
WHERE fx.repaired_id IS NOT NULL
