"""The dashboard over a frozen source: every key sends its control message."""

from __future__ import annotations

import asyncio
import functools

import pytest

from swarm.tui import build_app
from swarm.tui.help import HelpScreen


def sync(test):
    """Run an async test body on its own event loop (Textual's run_test is async)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


@pytest.mark.parametrize(
    ("key", "sent"),
    [
        ("space", ("pause", {})),
        ("plus", ("speed", {"speed": 8.0})),
        ("minus", ("speed", {"speed": 2.0})),
        ("s", ("inject", {"count": 1})),
        ("c", ("crash", {"fraction": 0.1})),
        ("p", ("partition", {"groups": [["north"]]})),
        ("f", ("fanout", {"fanout": 2})),
        ("a", ("aggregator", {"rule": "median"})),
    ],
)
@sync
async def test_each_key_sends_its_control_message(frozen, key, sent) -> None:
    app = build_app(frozen)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
    assert frozen.sent == [sent]


@sync
async def test_keys_follow_the_live_state(frozen) -> None:
    frozen.status = frozen.status | {"paused": True, "partitioned": True}
    app = build_app(frozen)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("space", "p", "F")
        await pilot.pause()
    # resume when paused, heal when partitioned; fanout 1 cannot go lower (nothing sent)
    assert frozen.sent == [("resume", {}), ("heal", {})]


@sync
async def test_reset_export_help_and_quit(frozen, tmp_path) -> None:
    app = build_app(frozen, export_root=tmp_path)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("r")
        await pilot.press("e")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
    assert frozen.resets == 1
    exported = tmp_path / "lab-round30"
    assert (exported / "metrics.jsonl").read_text().count("\n") == 31
    assert (exported / "events.jsonl").read_text().count("\n") == 3
    assert app.return_code == 0


@sync
async def test_panels_that_do_not_apply_stay_hidden(frozen) -> None:
    app = build_app(frozen)
    async with app.run_test() as pilot:
        await pilot.pause()
        shown = {p.id for p in app.query(".panel") if p.display}
    assert shown == {"fleet", "traffic", "learning", "adversary"}


@sync
async def test_the_palette_offers_parametrised_controls(frozen) -> None:
    app = build_app(frozen)
    async with app.run_test() as pilot:
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Crash 25% of class taxi" in titles
        assert "Aggregator krum" in titles
        command = next(
            c for c in app.get_system_commands(app.screen) if c.title == "Partition south off"
        )
        command.callback()
    assert frozen.sent == [("partition", {"groups": [["south"]]})]


def test_the_main_screen_in_80x24(frozen, snap_compare) -> None:
    assert snap_compare(build_app(frozen), terminal_size=(80, 24))


def test_the_main_screen_in_a_large_terminal(frozen, snap_compare) -> None:
    assert snap_compare(build_app(frozen), terminal_size=(160, 48))
