"""Panels drawn from a View: the figures a user reads are there, in the right words."""

from __future__ import annotations

from rich.console import Console

from swarm.run.live import Snapshot
from swarm.tui.panels.fleet import FleetPanel
from swarm.tui.panels.hazards import HazardsPanel
from swarm.tui.view import View


def text(panel, view: View, width: int = 60) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(panel.draw(view, width))
    return console.export_text()


def view_of(info: dict, status: dict, rows: list[dict]) -> View:
    view = View(info)
    view.apply(Snapshot(rows=rows, status=status, state="running"))
    return view


def test_the_fleet_panel_shows_sleep_and_battery_only_when_the_fleet_has_them() -> None:
    battery = view_of(
        {"agents": 300},
        {
            "classes": {
                "hearable": {
                    "total": 300,
                    "alive": 290,
                    "asleep": 200,
                    "crashed": 10,
                    "energy_left": 0.15,
                    "depleted": 4,
                }
            }
        },
        [{"round": 3, "time": 3.0}],
    )
    drawn = text(FleetPanel(), battery)
    assert "asleep" in drawn and "energy" in drawn
    assert "15%" in drawn and "4 flat" in drawn
    mains = view_of(
        {"agents": 10}, {"classes": {"gpu": {"total": 10, "alive": 10, "crashed": 0}}}, []
    )
    drawn = text(FleetPanel(), mains)
    assert "asleep" not in drawn and "energy" not in drawn


def test_the_fleet_panel_shows_failures_repairs_and_goodput_when_devices_fail() -> None:
    gpu = {"total": 10, "alive": 8, "crashed": 2, "failures": 5, "recoveries": 3}
    failing = view_of({"agents": 10}, {"classes": {"gpu": gpu}, "goodput": 0.734}, [])
    drawn = text(FleetPanel(), failing, width=80)
    assert "failed" in drawn and "back" in drawn and "goodput 73%" in drawn
    row = next(line for line in drawn.splitlines() if line.strip().startswith("gpu"))
    assert row.split()[-2:] == ["5", "3"]
    steady = view_of({"agents": 10}, {"classes": {"gpu": {"total": 10, "alive": 10}}}, [])
    drawn = text(FleetPanel(), steady, width=80)
    assert "failed" not in drawn and "goodput" not in drawn


def test_the_hazards_panel_shows_awareness_latency_percentiles() -> None:
    info = {"workload": "hazards", "share": 0.9}
    row = {"round": 10, "time": 1.0, "aware_fraction": 0.5, "hazards_active": 2}
    awareness = {"p50": 0.64, "p90": 3.1, "p99": 30.4, "reached": 24, "missed": 1}
    drawn = text(HazardsPanel(), view_of(info, {"awareness": awareness}, [row]))
    assert "time to 90%" in drawn
    assert "p50 0.64s p90 3.1s p99 30s" in drawn and "reached 24" in drawn
    early = text(HazardsPanel(), view_of(info, {"awareness": {"p50": None}}, [row]))
    assert "p50 - p90 - p99 -" in early


def test_the_consensus_panel_puts_measured_voting_beside_the_law() -> None:
    from swarm.tui.panels.consensus import ConsensusPanel

    info = {"workload": "hazards", "voting": "quorum", "quorum": 2}
    judges = {
        "k": 5,
        "member_accuracy": 0.885,
        "majority": 0.911,
        "majority_law": 0.987,
        "error_correlation": 0.45,
        "independent_majority": 0.986,
    }
    row = {"round": 9, "readings": 100, "false_alarms": 3, "missed_decisions": 1}
    drawn = text(ConsensusPanel(), view_of(info, {"judges": judges}, [row]), width=70)
    assert "5 judges, each 0.885" in drawn
    assert "majority 0.911  law 0.987  indep. 0.986" in drawn
    assert "taxis right 0.96 of 100 readings" in drawn
    assert "(1-p)^2 0.0016" in drawn


def test_a_panel_fed_garbage_says_so_instead_of_stopping_the_dashboard() -> None:
    from swarm.tui.panels.consensus import ConsensusPanel

    garbage = view_of(
        {"workload": "hazards"},
        {"judges": {"x": 1}, "classes": {"taxi": {"energy_left": "lots"}}},
        [{"round": 1, "readings": 3}],
    )
    for panel in (FleetPanel(), ConsensusPanel()):
        shown: list = []
        panel.update = shown.append  # what Static would display
        panel.show(garbage)
        assert "cannot draw from this run's data" in str(shown[0])


def test_the_map_puts_each_device_where_it_is_in_its_state() -> None:
    import numpy as np

    from swarm.fleet import fleetmap
    from swarm.tui.panels.map import MapPanel, render

    corners = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    lines = render(corners, "*..x", width=11, rows=5).plain.splitlines()
    assert len(lines) == 5 and all(len(line) == 11 for line in lines)
    # North up: y = 10 in the top line, y = 0 in the bottom one (lower half block).
    assert lines[0][0] == lines[0][-1] == "▀" and lines[-1][0] == lines[-1][-1] == "▄"
    # One pixel shared by three agents: the crash wins, then the rarer calm state.
    same = np.zeros((3, 2))
    assert render(same, ".x*", 3, 2).spans[0].style.color.name == "red"
    many = np.zeros((5, 2))
    assert render(many, "....*", 3, 2).spans[0].style.color.name == "green"  # 1 informed
    assert render(many, "****.", 3, 2).spans[0].style.color.name == "grey62"  # 1 left
    status = {"map": fleetmap.encode(corners, "*..x")}
    drawn = text(MapPanel(), view_of({"workload": "gossip"}, status, []))
    assert "informed 1" in drawn and "not informed 2" in drawn and "crashed 1" in drawn
    assert MapPanel.applies(view_of({}, status, [])) and not MapPanel.applies(View({}))


def test_a_forged_map_says_so_in_the_panel() -> None:
    from swarm.tui.panels.map import MapPanel

    forged = view_of(
        {}, {"map": {"extent": [0, 0, 1, 1], "x": b"\x00", "y": b"", "state": "."}}, []
    )
    shown: list = []
    panel = MapPanel()
    panel.update = shown.append
    panel.show(forged)
    assert "cannot draw from this run's data" in str(shown[0]) and "1 x, 0 y" in str(shown[0])


def test_a_status_without_a_map_keeps_the_last_map() -> None:
    from swarm import topics, wire
    from swarm.run.live import Feed

    feed = Feed()

    def status(body: dict) -> None:
        envelope = wire.Envelope("metrics", "observer", 0, 0.0, 0, body)
        feed.on_payload(topics.status("r1"), wire.encode(envelope))

    drawn = {"extent": [0, 0, 1, 1], "x": b"\x00", "y": b"\x00", "state": "*"}
    status({"round": 1, "map": drawn})
    status({"round": 2})
    assert feed.take().status == {"round": 2, "map": drawn}


def test_the_power_panel_shows_each_regions_draw_against_its_cap_and_its_carbon() -> None:
    from swarm.tui.panels.power import PowerPanel

    status = {
        "power": {
            "dc": {"power_w": 4990.0, "cap_w": 5000.0, "co2_g_per_h": 3800.0, "intensity": 481.0},
            "home": {"power_w": 0.0021, "cap_w": None, "co2_g_per_h": 0.5, "intensity": 56.0},
        },
        "classes": {
            "gpu": {"total": 10, "alive": 10},
            "glasses": {"total": 5, "alive": 5, "energy_left": 0.4, "asleep": 2},
        },
    }
    view = view_of({"agents": 15}, status, [{"round": 3, "time": 3.0}])
    assert PowerPanel.applies(view)
    drawn = text(PowerPanel(), view, width=70)
    dc = next(line for line in drawn.splitlines() if line.startswith("dc"))
    assert dc.split()[1:5] == ["4.99", "kW", "5", "kW"] and "481" in dc
    home = next(line for line in drawn.splitlines() if line.startswith("home"))
    assert "2.1 mW" in home and "none" in home
    assert "glasses 40% 2 asleep" in drawn and "gpu" not in drawn.splitlines()[-1]
    assert not PowerPanel.applies(view_of({"agents": 3}, {"classes": {}}, []))


def test_a_metered_fleet_reports_power_per_region_live_and_a_gossip_fleet_does_not() -> None:
    from swarm import clock
    from swarm.fleet import Fleet
    from swarm.scenario import load

    fleet = Fleet(load("lab", **{"run.rounds": 5, "sybil.count": 0}))
    clock.run(fleet.run())
    power = fleet.status()["power"]
    assert set(power) == {"north", "south"}
    assert all(entry["power_w"] > 0 and entry["co2_g_per_h"] > 0 for entry in power.values())
    gossip = Fleet(load("rumor", **{"run.rounds": 3, "fleet.count": 20}))
    clock.run(gossip.run())
    assert "power" not in gossip.status()
