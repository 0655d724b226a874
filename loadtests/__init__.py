"""A bounded load generator for the engine: latency percentiles and throughput of an
endpoint, measured against a bare endpoint of the same app in the same run.

Loopback targets only; every run is capped in time and in requests and stops itself.
"""
