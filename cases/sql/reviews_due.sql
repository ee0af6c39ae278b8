-- Periodic reviews due (POLICY.md "The case ledger"): A yearly, B every six months, counted from
-- 救助开始日期 or the last review in ledger.reviews. After a recorded review the next is due one interval
-- later; without one, on the latest anniversary of 救助开始日期 (start + k intervals) up to the end of
-- tonight's window. Intervals are calendar months (2025-08-31 + 6 months = 2026-02-28). Listed tonight: households whose
-- due date is past (overdue) or within the district's review_due_soon_days after the as-of date
-- (due_soon). Households whose class or basis date is unknown are listed in ledger.reviews_unscheduled
-- with the reason, never dropped.
-- Inputs set by cases/reviews.py: variable as_of; temp tables review_interval (district,
-- management_class, months) and review_window (district, due_soon_days), one row per roster district.
CREATE OR REPLACE TEMP TABLE review_schedule AS
WITH
roster AS (SELECT * FROM staging.roster WHERE household_id IS NOT NULL),
reviews AS (SELECT * FROM ledger.reviews WHERE reviewed_on <= getvariable('as_of')),
intervals AS (SELECT * FROM review_interval),
windows AS (SELECT * FROM review_window),

households AS (
    SELECT household_id,
           any_value(district) AS district,
           any_value(township) AS township,
           any_value(category) AS category,
           count(DISTINCT nullif(upper(trim(management_class)), '')) AS n_classes,
           min(nullif(upper(trim(management_class)), '')) AS management_class,
           string_agg(DISTINCT management_class, '/' ORDER BY management_class) AS classes_listed,
           min(start_date) AS start_date   -- a member who joined later does not move the household's start
    FROM roster
    GROUP BY household_id
),
last_reviews AS (
    SELECT household_id, max(reviewed_on) AS last_review
    FROM reviews
    GROUP BY household_id
),
-- The later of 救助开始日期 and the last review: a review before a fresh start no longer counts.
bases AS (
    SELECT h.*, r.last_review,
           greatest(h.start_date, r.last_review) AS basis_date,
           CASE WHEN r.last_review IS NOT NULL AND (h.start_date IS NULL OR r.last_review >= h.start_date)
                THEN '上次复核'
                WHEN h.start_date IS NOT NULL THEN '救助开始日期' END AS basis
    FROM households h
    LEFT JOIN last_reviews r USING (household_id)
),
scheduled AS (
    SELECT b.*, i.months, w.due_soon_days,
           CASE WHEN b.basis = '上次复核' THEN CAST(b.basis_date + INTERVAL (i.months) MONTH AS DATE)
                ELSE CAST(b.basis_date + INTERVAL (i.months * greatest(1, cycles.k)) MONTH AS DATE) END AS due_date,
           nullif(concat_ws('；',
               CASE WHEN b.n_classes > 1 THEN '分类管理不一致：' || b.classes_listed
                    WHEN b.management_class IS NULL THEN '分类管理为空'
                    WHEN i.months IS NULL THEN '分类管理未知：' || b.management_class END,
               CASE WHEN b.basis_date IS NULL THEN '缺少救助开始日期' END), '') AS reason
    FROM bases b
    LEFT JOIN intervals i ON i.district IS NOT DISTINCT FROM b.district AND i.management_class = b.management_class
    LEFT JOIN windows w ON w.district IS NOT DISTINCT FROM b.district
    -- No review recorded: the reviews fall on the anniversaries of 救助开始日期 (every interval), and the one
    -- due is the latest anniversary up to the end of tonight's window (so a household on the roster since
    -- 2015 is overdue for this cycle's review, not by eleven years). k counts whole intervals to that day.
    CROSS JOIN LATERAL (
        SELECT CAST(floor(date_diff('month', b.basis_date, getvariable('as_of') + w.due_soon_days) / i.months)
                    - CASE WHEN b.basis_date + INTERVAL (i.months * floor(date_diff('month', b.basis_date,
                               getvariable('as_of') + w.due_soon_days) / i.months)) MONTH
                               > getvariable('as_of') + w.due_soon_days THEN 1 ELSE 0 END AS INTEGER) AS k
    ) cycles
)
SELECT *,
       CASE WHEN due_date < getvariable('as_of') THEN 'overdue' ELSE 'due_soon' END AS status,
       CAST(abs(due_date - getvariable('as_of')) AS INTEGER) AS days_overdue_or_left
FROM scheduled;

CREATE OR REPLACE TABLE ledger.reviews_due AS
SELECT getvariable('as_of')::DATE AS run_date, household_id, district, township, category, management_class,
       basis, basis_date, due_date, status, days_overdue_or_left
FROM review_schedule
WHERE reason IS NULL AND due_date <= getvariable('as_of') + due_soon_days
ORDER BY status = 'due_soon', district, township, due_date, household_id;

CREATE OR REPLACE TABLE ledger.reviews_unscheduled AS
SELECT getvariable('as_of')::DATE AS run_date, household_id, district, township, category,
       classes_listed AS management_class, start_date, last_review, reason
FROM review_schedule
WHERE reason IS NOT NULL
ORDER BY district, township, household_id;
