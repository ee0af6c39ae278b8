-- Tonight's flags (temp table tonight, cases/sql/tonight.sql) applied to the ledger, set-based.
-- Variables: run_date, ledger_now, ledger_deadline, ledger_evaluated, and the temp table ledger_rule_priority.
-- {priority_drop}, {unit} and {close} are substituted by cases/ledger.py.
--
-- ledger_action: one row per case raised tonight, with what happens to it (cases/ledger.py docstring):
--   insert  no case yet                                   → new, "首次发现"
--   skip    this night was already applied to the case    → nothing
--   quiet   refuted, same evidence fingerprint            → stays refuted, nothing recorded
--   reraise refuted (new evidence) or closed              → new again
--   update  new / open / confirmed                        → open (new) or unchanged status, fields refreshed
CREATE OR REPLACE TEMP TABLE ledger_action AS
SELECT t.*, c.status AS old_status,
       CAST(CASE WHEN t.all_fuzzy THEN least(3, p.priority + {priority_drop}) ELSE p.priority END AS INTEGER)
           AS priority,
       {unit} AS responsible_unit,
       CASE WHEN c.status IS NULL THEN 'insert'
            WHEN c.last_seen IS NOT NULL AND c.last_seen >= getvariable('run_date') THEN 'skip'
            WHEN c.status = 'refuted' AND t.fingerprint IS NOT DISTINCT FROM c.evidence_fingerprint THEN 'quiet'
            WHEN c.status IN ('refuted', 'closed') THEN 'reraise'
            ELSE 'update' END AS action
FROM tonight t
LEFT JOIN ledger.cases c USING (case_id)
LEFT JOIN ledger_rule_priority p ON p.rule = t.rule;

-- ledger_close: open cases of a rule evaluated tonight that were not raised again, with the reason.
CREATE OR REPLACE TEMP TABLE ledger_close AS
SELECT c.case_id, c.status,
       CASE WHEN NOT EXISTS (SELECT 1 FROM flags.household h WHERE h.household_id = c.household_id)
            THEN '家庭已不在名册'
            ELSE '核对条件不再成立（此前证据：' || coalesce(c.evidence, 'None') || '）' END AS reason
FROM ledger.cases c
WHERE {close}
  AND c.status IN ('new', 'open') AND list_contains(getvariable('ledger_evaluated'), c.rule)
  AND c.case_id NOT IN (SELECT case_id FROM tonight) AND c.last_seen < getvariable('run_date');

INSERT INTO ledger.cases
SELECT case_id, household_id, rule, 'new', getvariable('run_date'), getvariable('run_date'),
       getvariable('ledger_deadline'), responsible_unit, district, township, category, member_id, member_name,
       evidence, fingerprint, link, link_score, priority, NULL, getvariable('run_date')
FROM ledger_action WHERE action = 'insert';

UPDATE ledger.cases c
SET status = CASE WHEN a.action = 'reraise' THEN 'new' WHEN c.status = 'new' THEN 'open' ELSE c.status END,
    opened_on = CASE WHEN a.action = 'reraise' THEN getvariable('run_date') ELSE c.opened_on END,
    deadline = CASE WHEN a.action = 'reraise' THEN getvariable('ledger_deadline') ELSE c.deadline END,
    closed_reason = CASE WHEN a.action = 'reraise' THEN NULL ELSE c.closed_reason END,
    last_seen = getvariable('run_date'), member_id = a.member_id, member_name = a.member_name,
    evidence = a.evidence, evidence_fingerprint = a.fingerprint, link = a.link, link_score = a.link_score,
    priority = a.priority, updated_on = getvariable('run_date')
FROM ledger_action a
WHERE c.case_id = a.case_id AND a.action IN ('reraise', 'update');

UPDATE ledger.cases c
SET status = 'closed', closed_reason = x.reason, updated_on = getvariable('run_date')
FROM ledger_close x
WHERE c.case_id = x.case_id;

INSERT INTO ledger.case_history
SELECT case_id, getvariable('run_date'), getvariable('ledger_now'), old_status, 'new',
       CASE action WHEN 'insert' THEN '首次发现'
                   WHEN 'reraise' THEN CASE old_status WHEN 'refuted' THEN '查否后出现新证据，重新提出' ELSE '再次发现' END
       END, evidence
FROM ledger_action WHERE action IN ('insert', 'reraise')
UNION ALL
SELECT case_id, getvariable('run_date'), getvariable('ledger_now'), 'new', 'open', '再次发现', evidence
FROM ledger_action WHERE action = 'update' AND old_status = 'new'
UNION ALL
SELECT case_id, getvariable('run_date'), getvariable('ledger_now'), status, 'closed', reason, NULL
FROM ledger_close;
