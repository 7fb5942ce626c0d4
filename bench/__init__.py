"""Footprint's benchmarks (``make bench``, ``python -m bench [--quick]``).

Speed is measured, not asserted by timers: each benchmark reports a ratio to a baseline measured
in the same run (deserializing the same stream records, importing bare boto3) or a count (AWS calls
per event), so the figures mean the same on a laptop and in CI. The figures recorded for a release
and how to read them are in docs/benchmarks.md.

Modules:
- ``engine_throughput``: the journey service (the real ``JourneyService`` on the in-memory ports of
  ``journey_ports``) with 100 active journeys over synthetic stream records.
- ``calls`` and ``aws_calls``: AWS API calls per event, counted with botocore event hooks, on the local stack.
- ``cold_start``: importing each handler module in a fresh interpreter, against importing boto3.
- ``layer_size``: the unzipped size of what SharedLayer ships, against Lambda's 250 MB limit.
- ``cost``: an estimate in USD per 1,000 events from the counted calls and list prices.
"""
