"""The swarm topic scheme and MQTT topic-filter matching.

Every topic the emulator uses lives under ``swarm/<run>/...`` so that several runs can share
one broker without seeing each other's traffic. The builders here are deliberately dumb string
formatting (they sit on the per-message hot path); names are checked once, up front, with
:func:`validate_segment`.

:func:`matches` and :class:`TopicIndex` implement MQTT 3.1.1/5 filter semantics exactly, so the
embedded broker routes messages the same way a real broker would.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

__all__ = [
    "MAX_SEGMENT_CHARS",
    "MAX_TOPIC_BYTES",
    "ROOT",
    "TopicError",
    "TopicIndex",
    "control",
    "control_filter",
    "events",
    "events_filter",
    "family",
    "inbox",
    "inbox_filter",
    "matches",
    "metrics",
    "region",
    "run_filter",
    "status",
    "validate_filter",
    "validate_segment",
    "validate_topic",
]

ROOT = "swarm"
MAX_SEGMENT_CHARS = 128
MAX_TOPIC_BYTES = 65535  # MQTT strings carry a 16-bit length prefix

T = TypeVar("T", bound=Hashable)


class TopicError(ValueError):
    """An invalid topic name, topic filter or topic segment."""


# --- the scheme ------------------------------------------------------------------------------
# No validation here: these run once per message. Validate names once with validate_segment.


def inbox(run: str, agent_id: str) -> str:
    """Point-to-point topic an agent subscribes to for messages addressed to it."""
    return f"{ROOT}/{run}/agent/{agent_id}/inbox"


def region(run: str, region: str) -> str:
    """Broadcast topic shared by every agent in ``region``."""
    return f"{ROOT}/{run}/region/{region}"


def metrics(run: str) -> str:
    """Topic agents publish their periodic metrics on."""
    return f"{ROOT}/{run}/metrics"


def status(run: str) -> str:
    """Topic the observer publishes the fleet's live state on (per-class counts, knobs)."""
    return f"{ROOT}/{run}/status"


def events(run: str, kind: str) -> str:
    """Topic for notable events of one ``kind`` (observed by the dashboard and recorder)."""
    return f"{ROOT}/{run}/events/{kind}"


def control(run: str, command: str) -> str:
    """Topic the orchestrator publishes a control ``command`` on."""
    return f"{ROOT}/{run}/control/{command}"


def bundle(run: str, shard: int) -> str:
    """Where one process of a fleet receives bundles of its agents' messages (shared mode)."""
    return f"{ROOT}/{run}/shard/{shard}/bundle"


def shard_metrics(run: str, shard: int) -> str:
    """Where a shard publishes its slice of each round's metrics."""
    return f"{ROOT}/{run}/shard/{shard}/metrics"


def shard_result(run: str, shard: int) -> str:
    """Where a shard publishes its end-of-run figures."""
    return f"{ROOT}/{run}/shard/{shard}/result"


def shard_status(run: str, shard: int) -> str:
    """A shard's state; its last will publishes `dead` here when its process vanishes."""
    return f"{ROOT}/{run}/shard/{shard}/status"


def run_filter(run: str) -> str:
    """Filter matching all traffic of one run."""
    return f"{ROOT}/{run}/#"


def events_filter(run: str) -> str:
    """Filter matching every event kind of one run."""
    return f"{ROOT}/{run}/events/#"


def control_filter(run: str) -> str:
    """Filter matching every control command of one run."""
    return f"{ROOT}/{run}/control/#"


def inbox_filter(run: str) -> str:
    """Filter matching every agent inbox of one run (for tracing / recording)."""
    return f"{ROOT}/{run}/agent/+/inbox"


def family(topic: str) -> str:
    """What kind of run topic this is ("inbox", "bundle", "metrics", "control", ...), for
    counting by topic without one entry per agent; "other" outside the layout."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != ROOT:
        return "other"
    what = parts[2]
    if what == "agent":
        return "inbox" if len(parts) >= 5 and parts[4] == "inbox" else "other"
    if what == "shard":
        return f"shard/{parts[4]}" if len(parts) >= 5 and parts[4] in _SHARD_KINDS else "other"
    return what if what in _RUN_KINDS else "other"


_SHARD_KINDS = frozenset({"bundle", "metrics", "result", "status"})
_RUN_KINDS = frozenset({"metrics", "status", "events", "control", "region"})


# --- validation ------------------------------------------------------------------------------


def validate_segment(kind: str, name: str) -> str:
    """Check that ``name`` can be used as one topic level and return it.

    ``kind`` (e.g. ``"run id"``, ``"agent id"``) is only used in the error message. Names must
    not contain level separators or wildcards (they would change the topic's structure), nor
    start with ``$`` (such topics are hidden from ``#``/``+`` subscriptions by the MQTT spec).
    """
    if (
        not isinstance(name, str)
        or not name
        or len(name) > MAX_SEGMENT_CHARS
        or name[0] == "$"
        or any(c in name for c in "/+#\0")
    ):
        raise TopicError(
            f"{kind} {name!r} is invalid: use 1-{MAX_SEGMENT_CHARS} characters "
            "without '/', '+', '#', NUL or a leading '$'"
        )
    return name


def _check_common(what: str, value: str) -> None:
    """Rules shared by topic names and filters (MQTT 3.1.1 §1.5.3, §4.7.3)."""
    if not isinstance(value, str):
        raise TopicError(f"{what} must be a str, not {type(value).__name__}")
    if not value:
        raise TopicError(f"{what} must not be empty")
    if "\0" in value:
        raise TopicError(f"{what} {value!r} contains a NUL character")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise TopicError(f"{what} {value!r} is not encodable as UTF-8") from exc
    if size > MAX_TOPIC_BYTES:
        raise TopicError(
            f"{what} is {size} bytes long in UTF-8; at most {MAX_TOPIC_BYTES} are allowed"
        )


def validate_topic(topic: str) -> str:
    """Check an MQTT topic name (what is published to) and return it."""
    _check_common("topic name", topic)
    if "+" in topic or "#" in topic:
        raise TopicError(
            f"topic name {topic!r} contains a wildcard ('+' or '#'); "
            "wildcards are only allowed in subscription filters"
        )
    return topic


def validate_filter(filter: str) -> str:
    """Check an MQTT topic filter (what is subscribed to) and return it."""
    _check_common("topic filter", filter)
    if "+" not in filter and "#" not in filter:
        return filter
    levels = filter.split("/")
    last = len(levels) - 1
    for i, level in enumerate(levels):
        if "#" in level:
            if level != "#":
                raise TopicError(
                    f"topic filter {filter!r}: '#' must occupy a whole level, got {level!r}"
                )
            if i != last:
                raise TopicError(f"topic filter {filter!r}: '#' is only allowed as the last level")
        elif "+" in level and level != "+":
            raise TopicError(
                f"topic filter {filter!r}: '+' must occupy a whole level, got {level!r}"
            )
    return filter


# --- matching --------------------------------------------------------------------------------


def matches(filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``filter`` under MQTT rules.

    Both arguments are assumed valid (see :func:`validate_filter` / :func:`validate_topic`).
    Empty levels are real levels; ``+`` matches exactly one level, ``#`` the parent level and
    any number of children; a filter starting with a wildcard never matches a ``$`` topic.
    """
    if topic[:1] == "$" and filter[:1] in ("+", "#"):
        return False
    if "+" not in filter and "#" not in filter:
        return filter == topic
    topic_levels = topic.split("/")
    n = len(topic_levels)
    filter_levels = filter.split("/")
    for i, level in enumerate(filter_levels):
        if level == "#":
            return True
        if i >= n or (level != "+" and level != topic_levels[i]):
            return False
    return len(filter_levels) == n


class _Node(Generic[T]):
    """A trie node for one filter level. Value maps are value -> insertion sequence number."""

    __slots__ = ("children", "hash_values", "plus", "values")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.plus: _Node[T] | None = None
        self.values: dict[T, int] = {}  # filters ending at this node
        self.hash_values: dict[T, int] = {}  # filters ending with '/#' below this node

    def is_empty(self) -> bool:
        return not (self.children or self.plus or self.values or self.hash_values)


_EMPTY: tuple[()] = ()
_MEMO_MIN = 1 << 16  # memo entries always allowed; more if there are more exact topics


class TopicIndex(Generic[T]):
    """Subscription index: which values subscribed to filters that match a topic.

    The broker calls :meth:`match` once per published message, typically with tens of thousands
    of exact inbox subscriptions and a handful of wildcard ones. Exact filters therefore live in
    a dict (one lookup, result returned as stored), wildcard filters in a per-level trie, so the
    cost of a match depends on the matching subscriptions, not on all of them.

    Results list each value once, ordered by when its earliest matching (filter, value) pair was
    added, so routing is deterministic.

    While wildcard subscriptions exist, a trie walk costs ~10x a dict lookup even when nothing
    matches, so results are memoised per topic. Wildcard subscriptions are few and stable
    (changing one clears the memo); changing an exact one only drops that topic's entry. The
    memo is bounded and simply cleared when full.
    """

    __slots__ = ("_exact", "_memo", "_pairs", "_root", "_seq", "_wildcards")

    def __init__(self) -> None:
        self._exact: dict[str, list[T]] = {}
        self._root: _Node[T] = _Node()
        self._pairs: dict[tuple[str, T], int] = {}  # (filter, value) -> sequence number
        self._seq = 0
        self._wildcards = 0
        self._memo: dict[str, Sequence[T]] = {}  # topic -> match result, only with wildcards

    def __len__(self) -> int:
        """Number of (filter, value) pairs."""
        return len(self._pairs)

    def add(self, filter: str, value: T) -> bool:
        """Subscribe ``value`` to ``filter``; False if that pair was already present.

        Raises TopicError for an invalid filter.
        """
        validate_filter(filter)
        key = (filter, value)
        if key in self._pairs:
            return False
        seq = self._seq
        self._seq = seq + 1
        self._pairs[key] = seq
        if "+" not in filter and "#" not in filter:
            self._exact.setdefault(filter, []).append(value)
            self._memo.pop(filter, None)
            return True
        self._memo.clear()
        node = self._root
        levels = filter.split("/")
        hash_tail = levels[-1] == "#"
        if hash_tail:
            levels.pop()
        for level in levels:
            if level == "+":
                if node.plus is None:
                    node.plus = _Node()
                node = node.plus
            else:
                child = node.children.get(level)
                if child is None:
                    child = node.children[level] = _Node()
                node = child
        (node.hash_values if hash_tail else node.values)[value] = seq
        self._wildcards += 1
        return True

    def remove(self, filter: str, value: T) -> bool:
        """Unsubscribe ``value`` from ``filter``; False if the pair was not present."""
        if self._pairs.pop((filter, value), None) is None:
            return False
        if "+" not in filter and "#" not in filter:
            stored = self._exact[filter]
            stored.remove(value)
            if not stored:
                del self._exact[filter]
            self._memo.pop(filter, None)
            return True
        self._memo.clear()
        self._wildcards -= 1
        levels = filter.split("/")
        hash_tail = levels[-1] == "#"
        if hash_tail:
            levels.pop()
        path: list[tuple[_Node[T], str]] = []  # (parent, level) for each step
        node = self._root
        for level in levels:
            path.append((node, level))
            child = node.plus if level == "+" else node.children[level]
            assert child is not None
            node = child
        del (node.hash_values if hash_tail else node.values)[value]
        # Prune nodes left empty so churn does not leak memory.
        for parent, level in reversed(path):
            if not node.is_empty():
                break
            if level == "+":
                parent.plus = None
            else:
                del parent.children[level]
            node = parent
        return True

    def match(self, topic: str) -> Sequence[T]:
        """Values subscribed to a filter matching ``topic``, each once, in subscription order.

        The result may be shared with the index and with other callers: do not mutate it, and
        do not keep it across add/remove. ``topic`` is assumed to be a valid topic name.
        """
        if self._wildcards:
            hit = self._memo.get(topic)
            if hit is not None:
                return hit
            return self._match_and_memoise(topic)
        exact = self._exact.get(topic)
        return _EMPTY if exact is None else exact

    def _match_and_memoise(self, topic: str) -> Sequence[T]:
        exact = self._exact.get(topic)
        found = self._match_wildcards(topic)
        result: Sequence[T]
        if not found:
            result = _EMPTY if exact is None else exact
        elif exact is None and len(found) == 1:
            result = list(found[0])  # one node's map is already ordered and duplicate-free
        else:
            ranked: list[tuple[int, T]] = []
            if exact is not None:
                pairs = self._pairs
                ranked.extend((pairs[(topic, v)], v) for v in exact)
            for value_map in found:
                ranked.extend((seq, v) for v, seq in value_map.items())
            ranked.sort(key=_first)
            seen: set[T] = set()
            merged: list[T] = []
            for _, v in ranked:
                if v not in seen:
                    seen.add(v)
                    merged.append(v)
            result = merged
        memo = self._memo
        if len(memo) >= max(_MEMO_MIN, 2 * len(self._exact)):
            memo.clear()  # crude but O(1) amortised; the working set refills it
        memo[topic] = result
        return result

    def _match_wildcards(self, topic: str) -> list[dict[T, int]]:
        """Non-empty value maps of all wildcard filters matching ``topic``."""
        root = self._root
        levels = topic.split("/")
        n = len(levels)
        found: list[dict[T, int]] = []
        # MQTT: filters starting with a wildcard do not match topics starting with '$'.
        if topic[:1] != "$":
            if root.hash_values:
                found.append(root.hash_values)
            stack: list[tuple[_Node[T], int]] = [(root.plus, 1)] if root.plus else []
        else:
            stack = []
        child = root.children.get(levels[0])
        if child is not None:
            stack.append((child, 1))
        while stack:
            node, i = stack.pop()
            if node.hash_values:
                found.append(node.hash_values)  # '#' also matches the parent level
            if i == n:
                if node.values:
                    found.append(node.values)
                continue
            if node.plus is not None:
                stack.append((node.plus, i + 1))
            child = node.children.get(levels[i])
            if child is not None:
                stack.append((child, i + 1))
        return found


def _first(item: tuple[int, object]) -> int:
    return item[0]
