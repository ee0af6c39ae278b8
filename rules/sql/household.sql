-- One row per roster household with what every rule needs: district, category, size and standard.
CREATE OR REPLACE TABLE flags.household AS
WITH
roster AS (SELECT * FROM staging.roster),
households AS (
    SELECT household_id,
           any_value(district) AS district,
           any_value(township) AS township,
           any_value(category) AS category,
           max(household_size) AS household_size,
           count(DISTINCT id_norm) AS members_listed
    FROM roster
    GROUP BY household_id
)
SELECT h.*, s.standard
FROM households h
LEFT JOIN flags.standard s ON s.district = h.district AND s.category = h.category;
