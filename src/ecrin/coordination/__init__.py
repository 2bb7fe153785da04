"""Coordination between server processes: what workers must share besides the database.

Credential-cache generations, throttling windows, leases (mutual exclusion with a time to
live) and a broadcast channel. One process uses the in-process implementation; several
processes of one instance share a Redis (or Valkey) server. Never imports `ecrin.db` nor
`ecrin.storage`.
"""
