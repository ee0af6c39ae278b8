"""Load stage: reading deliveries (landing.py, files.py, replay.py behind the base.Connector protocol) and
writing raw/staging tables with row-level accounting (load.py, audit.py)."""
