"""Seeded marketplace traffic: simulated users acting through the real store API (issue 4).

`store simulate --profile small --days 14 --seed 7` backfills history: the app runs in-process with a
ManualClock that the engine moves through the simulated days (engine.py), users behave by persona
(personas.py) under a demand model (demand.py), and what was planted is written to
`<data_dir>/truth.json` (truth.py). The only direct database write is granting the bootstrap admin its
role (no API can make the first admin); everything else is an HTTP request.
"""
