-- The case ledger (POLICY.md): one case per household and rule, with an append-only history.
CREATE TABLE IF NOT EXISTS ledger.cases (
    case_id VARCHAR PRIMARY KEY,          -- stable: <rule>-<household_id>
    household_id VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    status VARCHAR NOT NULL,              -- new | open | confirmed | refuted | closed
    opened_on DATE,
    last_seen DATE,
    deadline DATE,
    responsible_unit VARCHAR,
    district VARCHAR,
    township VARCHAR,
    category VARCHAR,
    member_id VARCHAR,
    member_name VARCHAR,
    evidence VARCHAR,
    evidence_fingerprint VARCHAR,
    link VARCHAR,
    link_score DOUBLE,
    priority INTEGER,
    closed_reason VARCHAR,
    updated_on DATE
);
CREATE TABLE IF NOT EXISTS ledger.case_history (
    case_id VARCHAR NOT NULL,
    run_date DATE NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    from_status VARCHAR,
    to_status VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    evidence VARCHAR
);
CREATE TABLE IF NOT EXISTS ledger.runs (run_date DATE PRIMARY KEY, applied_at TIMESTAMP);
-- Completed periodic reviews (复核), append-only: the next review falls due counted from the latest one
-- (cases/sql/reviews_due.sql). A correction is a new row, never an update.
CREATE TABLE IF NOT EXISTS ledger.reviews (
    household_id VARCHAR NOT NULL,
    reviewed_on DATE NOT NULL,
    source VARCHAR NOT NULL,              -- where the review was reported from (workbook, system, ...)
    note VARCHAR,
    recorded_at TIMESTAMP NOT NULL
);
