"""Coordination between server processes: what workers must share besides the database.

Credential-cache generations, throttling windows, leases (mutual exclusion with a time to
live) and a broadcast channel. One process uses the in-process implementation; the workers
of one host share a SQLite file in the data folder; processes on several hosts share a Redis
(or Valkey) server. Never imports `ecrin.db` nor `ecrin.storage`.
"""
