"""Validate stage: the check suite (suite.py, SQL engine today, Great Expectations later) and the
per-night source verdict (validate.py → audit.check_results, audit.source_status)."""
