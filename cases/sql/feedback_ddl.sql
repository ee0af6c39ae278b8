-- Auditors' conclusions, append-only: every accepted row of every returned workbook is kept, so no
-- conclusion is ever lost or overwritten; the case's status follows the latest one.
CREATE TABLE IF NOT EXISTS ledger.feedback_files (
    sha256 VARCHAR PRIMARY KEY, file VARCHAR, feedback_date DATE, imported_on DATE,
    rows_read BIGINT, rows_accepted BIGINT, rows_rejected BIGINT, rows_blank BIGINT, message VARCHAR);
CREATE TABLE IF NOT EXISTS ledger.conclusions (
    case_id VARCHAR, conclusion VARCHAR, status VARCHAR, note VARCHAR, feedback_date DATE,
    file VARCHAR, row BIGINT, sha256 VARCHAR, imported_on DATE);
CREATE TABLE IF NOT EXISTS ledger.feedback_rejects (
    sha256 VARCHAR, file VARCHAR, row BIGINT, case_id VARCHAR, reason VARCHAR, imported_on DATE);
-- what the auditor wrote on a rejected row is kept too (a mistyped case_id must not lose the note)
ALTER TABLE ledger.feedback_rejects ADD COLUMN IF NOT EXISTS conclusion VARCHAR;
ALTER TABLE ledger.feedback_rejects ADD COLUMN IF NOT EXISTS note VARCHAR;
