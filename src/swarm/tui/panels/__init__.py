"""The dashboard's panels, in screen order; a new panel is a new module listed here."""

from swarm.tui.panels.adversary import AdversaryPanel
from swarm.tui.panels.base import Panel
from swarm.tui.panels.consensus import ConsensusPanel
from swarm.tui.panels.fleet import FleetPanel
from swarm.tui.panels.gossip import GossipPanel
from swarm.tui.panels.hazards import HazardsPanel
from swarm.tui.panels.learning import LearningPanel
from swarm.tui.panels.map import MapPanel
from swarm.tui.panels.power import PowerPanel
from swarm.tui.panels.traffic import TrafficPanel

PANELS: tuple[type[Panel], ...] = (
    FleetPanel,
    MapPanel,
    TrafficPanel,
    GossipPanel,
    LearningPanel,
    PowerPanel,
    HazardsPanel,
    AdversaryPanel,
    ConsensusPanel,
)

__all__ = ["PANELS", "Panel"]
