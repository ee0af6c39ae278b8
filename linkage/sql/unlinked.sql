-- Records of {table} left unlinked because their ID is unusable or belongs to nobody known (hukou or
-- roster), with the reason. A record whose ID is a known person outside the roster households is not
-- listed: it is resolved, just not relevant. {id_key} / {owner_seq} are substituted by linkage/link.py.
INSERT INTO linked.unlinked
SELECT '{table}' AS record_table, r._file, r._row, CAST(r._delivery_date AS DATE), {owner_seq} AS owner_seq,
       CASE WHEN r.id_status = 'empty' THEN 'no ID delivered'
            WHEN r.id_status = 'malformed' THEN 'ID malformed: not an 18- or 15-digit resident ID'
            WHEN fx.reason IS NOT NULL THEN fx.reason
            WHEN r.id_status IN ('valid', 'upgraded15') THEN 'ID belongs to nobody known (hukou or roster)'
            ELSE 'ID unusable: ' || r.id_status
       END AS reason
FROM {records} r
-- not a known person (a NULL id_norm is nobody's); an anti join, not NOT IN: a delta night's few records
-- need not build NOT IN's NULL-aware mark join over the 2.9 M known ids of scale 1
ANTI JOIN linked.known_person k ON k.id = r.id_norm
LEFT JOIN linked.id_repair fx
       ON fx.id_key = {id_key} AND fx.name = coalesce(CAST(r.name AS VARCHAR), '') AND fx.id_status = r.id_status
WHERE fx.repaired_id IS NULL;
