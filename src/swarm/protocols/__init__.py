"""Sans-I/O protocol cores: they take messages and clock ticks and return what to send.

Nothing here does I/O or asyncio, so a core runs the same under the fleet, a test or a
hypothesis property: `gossip/` (dissemination, aggregation, topology), `consensus/`
(voting, robust aggregation, reputation) and `sybil` (the attacker's identities and the
behaviours every workload shares).
"""
