"""The edge worker (a Raspberry Pi at a home address): consumes only `edge`, no DB credentials.

Run it with `dramatiq edge.worker --queues edge`.
"""
