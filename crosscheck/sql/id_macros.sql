-- ID number macros (GB 11643-1999). Python twin: crosscheck/idnum.py; tests hold them to each other.

-- Full-width digits and X, every kind of space, quotes; upper case.
CREATE OR REPLACE MACRO id_clean(raw) AS
    upper(regexp_replace(
        translate(coalesce(raw, ''), '０１２３４５６７８９Ｘｘ', '0123456789XX'),
        '[\s\x{3000}\x{00a0}\x{200b}\x{feff}''"‘’“”`]', '', 'g'));

CREATE OR REPLACE MACRO id_check_char(first17) AS
    substr('10X98765432',
        (list_sum(list_transform(range(17),
            lambda i: (ascii(substr(first17, i + 1, 1)) - 48) * [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2][i + 1]
        )) % 11)::INTEGER + 1, 1);

CREATE OR REPLACE MACRO id_upgrade15(id15) AS
    substr(id15, 1, 6) || '19' || substr(id15, 7, 9)
    || id_check_char(substr(id15, 1, 6) || '19' || substr(id15, 7, 9));

-- valid | upgraded15 | bad_check | malformed | empty
CREATE OR REPLACE MACRO id_status(raw) AS
    CASE
        WHEN id_clean(raw) = '' THEN 'empty'
        WHEN regexp_full_match(id_clean(raw), '\d{15}') THEN 'upgraded15'
        WHEN NOT regexp_full_match(id_clean(raw), '\d{17}[\dX]') THEN 'malformed'
        WHEN id_check_char(substr(id_clean(raw), 1, 17)) <> substr(id_clean(raw), 18, 1) THEN 'bad_check'
        ELSE 'valid'
    END;

-- The usable 18-character ID, or NULL.
CREATE OR REPLACE MACRO id_norm(raw) AS
    CASE id_status(raw)
        WHEN 'valid' THEN id_clean(raw)
        WHEN 'upgraded15' THEN id_upgrade15(id_clean(raw))
    END;

CREATE OR REPLACE MACRO id_mask(id) AS
    CASE WHEN id IS NULL OR id = '' THEN '' ELSE substr(id, 1, 6) || '********' || substr(id, 15) END;
