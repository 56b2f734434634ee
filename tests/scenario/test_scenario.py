"""Scenarios: every built-in loads, every bad input is one clear line naming the key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm import scenario as sc
from swarm.scenario import Scenario, ScenarioError, builtin_names, from_dict, load


@pytest.mark.parametrize("name", builtin_names())
def test_builtins_load_and_round_trip_through_toml(name: str, tmp_path) -> None:
    s = load(name)
    assert isinstance(s, Scenario)
    path = tmp_path / f"{name}.toml"
    path.write_text(s.to_toml())
    assert load(path) == s


def test_default_is_fleet_and_well_under_a_minute_sized() -> None:
    s = load()
    assert s.run.name == "fleet"
    assert s.fleet.count <= 2000


def test_overrides_are_typed_and_bare_words_are_strings() -> None:
    s = load("fleet", ["gossip.fanout=3", "gossip.protocol=pull", "network.loss=0.25"])
    assert s.gossip.fanout == 3
    assert s.gossip.protocol == "pull"
    assert s.network.loss == 0.25
    s = load("fleet", ["fleet.mix={gpu = 1, taxi = 3}"], **{"run.seed": 9})
    assert s.fleet.mix == {"gpu": 1.0, "taxi": 3.0}
    assert s.run.seed == 9


def test_int_is_accepted_where_a_number_is_expected() -> None:
    assert load("fleet", ["network.latency=1"]).network.latency == 1.0


def test_duration_sets_the_number_of_rounds() -> None:
    s = load("fleet", ["run.duration=10.5", "gossip.period=2"])
    assert s.max_rounds == 6


BAD = [
    ({"gossip": {"fanuot": 2}}, "gossip.fanuot", "did you mean 'fanout'"),
    ({"gosip": {}}, "[gosip]", "did you mean 'gossip'"),
    ({"gossip": {"protocol": "pushpull"}}, "gossip.protocol", "did you mean 'push-pull'"),
    ({"gossip": {"fanout": True}}, "gossip.fanout", "integer"),
    ({"gossip": {"fanout": 1.5}}, "gossip.fanout", "integer"),
    ({"gossip": {"fanout": 0}}, "gossip.fanout", ">= 1"),
    ({"gossip": {"period": 0}}, "gossip.period", "> 0"),
    ({"fleet": {"count": -5}}, "fleet.count", ">= 1"),
    ({"fleet": {"count": 1}}, "fleet.count", "at least 2"),
    ({"fleet": {"count": 10}, "gossip": {"fanout": 10}}, "gossip.fanout", "9 other agents"),
    ({"network": {"loss": 1.5}}, "network.loss", "<= 1"),
    ({"network": {"latency": "fast"}}, "network.latency", "number"),
    ({"network": {"latency": float("nan")}}, "network.latency", "finite"),
    ({"network": {"topology": "star"}}, "network.topology", "allowed are"),
    ({"fleet": {"mix": {"drone": 1}}}, "fleet.mix.drone", "unknown device class"),
    ({"fleet": {"mix": {"gpu": -1}}}, "fleet.mix.gpu", ">= 0"),
    ({"fleet": {"mix": {}}}, "fleet.mix", "at least one"),
    ({"fleet": {"mix": "gpu"}}, "fleet.mix", "table"),
    ({"fleet": {"regions": ["a", "a"]}}, "fleet.regions", "unique"),
    ({"fleet": {"regions": []}}, "fleet.regions", "at least one"),
    ({"fleet": {"regions": ["a/b"]}}, "fleet.regions", "'/'"),
    ({"run": {"name": "#"}}, "run.name", "'#'"),
    ({"run": {"name": ""}}, "run.name", "1-128"),
    ({"run": 3}, "run", "table"),
    ({"network": {"partitions": [["r0"], ["mars"]]}}, "network.partitions", "'mars'"),
    ({"network": {"partitions": [["r0"], ["r0"]]}}, "network.partitions", "two groups"),
    ({"network": {"partitions": ["r0"]}}, "network.partitions", "list of lists"),
]


@pytest.mark.parametrize(("data", "key", "hint"), BAD)
def test_bad_values_name_the_key_and_what_is_allowed(data, key, hint) -> None:
    with pytest.raises(ScenarioError) as info:
        from_dict(data)
    message = str(info.value)
    assert key in message
    assert hint in message
    assert "\n" not in message


def test_file_errors(tmp_path) -> None:
    with pytest.raises(ScenarioError, match="not found"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nseed = ")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load(bad)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ScenarioError, match="cannot read"):
        load(binary)
    with pytest.raises(ScenarioError, match="did you mean 'rumor'"):
        load("rumour")


@pytest.mark.parametrize("text", ["gossip.fanout", "fanout=3", "a.b.c=1", "=3"])
def test_malformed_overrides(text: str) -> None:
    with pytest.raises(ScenarioError, match="--set"):
        sc.parse_override(text)


def test_override_of_unknown_key_is_reported_with_the_source() -> None:
    with pytest.raises(ScenarioError, match=r"built-in scenario 'rumor': unknown key run\.sed"):
        load("rumor", ["run.sed=3"])


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_sections = st.sampled_from(["run", "fleet", "gossip", "network", "nope"])
_keys = st.sampled_from(
    [
        "seed",
        "rounds",
        "count",
        "mix",
        "regions",
        "protocol",
        "fanout",
        "period",
        "topology",
        "loss",
        "partitions",
        "latency",
        "name",
        "k",
        "stop",
        "zzz",
    ]
)


@given(st.dictionaries(_sections, st.dictionaries(_keys, _values, max_size=4), max_size=4))
def test_any_garbage_gives_a_scenario_or_a_scenario_error(data) -> None:
    try:
        result = from_dict(data)
    except ScenarioError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(result, Scenario)
