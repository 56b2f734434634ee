"""The fleet: build the world of one scenario and run it on a broker.

`fleet` holds `Fleet`; beside it are the agents that drive the cores (`agent`,
`gossiper`), the recorder, the observation of a round (`observe`), the attack's
figures (`attack`) and the controller that turns knobs at run time (`control`).
"""

from swarm.fleet.fleet import EVENT, METRICS, Fleet, RoundCallback

__all__ = ["EVENT", "METRICS", "Fleet", "RoundCallback"]
