"""Asynchronous SGD with a parameter server: no round waits for a straggler.

The server (agent 0) sends its model to every client once; each client trains one local
epoch from the last model it received and pushes the update (new minus that model) with
the model's version; the server applies each update the moment it arrives and answers
with its current model (Dean et al. 2012, "Large scale distributed deep networks": Downpour
SGD). A slow client's update was computed from an old model: its staleness is the number
of updates the server applied since. With `learn.staleness = "inverse"` it is applied at
1/(1 + staleness) of its size (Zhang, Gupta, Lian and Liu 2016, "Staleness-aware async-SGD
for distributed deep learning", IJCAI). A client trains at most once per round, so fast
devices do not flood the server between round boundaries; one whose model never comes
asks again (a `beat`) after `PROBE_AFTER` rounds.

No single point of failure, by FedAvg's rule: a client still without a model
`ELECTION_AFTER` rounds after its beat takes the next of `candidates` (the agents in
index order) as its server, and serves when that is itself, from its own model (its last
copy of the global one, trained on). A client that hears from a later candidate than its
server follows it; one that hears a `fit` from an earlier candidate (a server back from
a repair) answers with a beat naming its own server, and that server steps down to it. A
dead server so costs PROBE_AFTER + ELECTION_AFTER rounds per dead candidate.

Wire kinds are FedAvg's: `fit` carries the model (its `round` is the model's version),
`update` the client's update (its `round` is the version it started from).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from swarm.protocols.gossip.core import ProtocolViolation, Send
from swarm.workloads.learn.compression import Compressor
from swarm.workloads.learn.strategies import (
    ELECTION_AFTER,
    MAX_SAMPLES,
    PROBE_AFTER,
    LearningCore,
    _round_of,
    later_candidate,
    next_candidate,
)

__all__ = ["WEIGHTINGS", "AsyncCore"]

WEIGHTINGS = ("none", "inverse")


class AsyncCore(LearningCore):
    """One member of an asynchronous parameter-server job: the server or a client."""

    def __init__(
        self,
        *args: Any,
        server: int,
        clients: list[int],
        weighting: str = "none",
        candidates: list[int] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting {weighting!r}: one of {', '.join(WEIGHTINGS)}")
        self.server = server
        self.clients = clients
        self.members = sorted({server, *clients})
        self.candidates = candidates if candidates is not None else [server]
        self.elections = 0  # times this member moved on to the next candidate
        self.weighting = weighting
        self.compressor = Compressor(self.compression, self.size, self.topk_ratio)
        self._downlink = Compressor("none", self.size)
        # Server: updates applied so far (the model's version) and each one's staleness.
        self.version = 0
        self.staleness: list[int] = []
        self.unknown = 0  # updates from agents that are not clients, or claiming a future model
        # Client: the model to train from next (and its version), the round it last
        # trained in, and the rounds it has waited for a model.
        self._base: tuple[int, np.ndarray] | None = None
        self._trained_round = -1
        self._busy_until = -1  # the last round its training still runs in
        self.waited = 0
        self._started = False

    @property
    def is_server(self) -> bool:
        return self.index == self.server

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        self.start_round(round)
        if self.resting:
            return []
        if self.is_server:
            if self._started:
                return []
            self._started = True  # the first model, to every client at once
            return [(c, "fit", self._model()) for c in self.clients]
        if round <= self._busy_until:
            return []  # still training: the update leaves when the compute time has passed
        if self._base is not None:
            return self._train(round, rng)
        self.waited += 1
        if self.waited >= PROBE_AFTER + ELECTION_AFTER:  # no answer to the beat: elect
            self._elect()
            if self.is_server:
                self._started = True  # our model, to everyone, now
                return [(c, "fit", self._model()) for c in self.clients]
            return []
        if self.waited % PROBE_AFTER == 0:  # our update or its answer was lost: ask again
            return [(self.server, "beat", {"round": round})]
        return []

    def _later(self, member: int, than: int) -> bool:
        """Whether `member` comes after `than` among the candidates."""
        return later_candidate(self.candidates, member, than)

    def _elect(self) -> None:
        """The server did not answer: the next candidate after it takes over."""
        self.server = next_candidate(self.candidates, self.server)
        self.elections += 1
        self.waited = 0
        if self.is_server:  # serve everyone else; dead members simply never answer
            self.clients = [m for m in self.members if m != self.index]

    def _model(self) -> dict[str, Any]:
        return {"round": self.version, "model": self._downlink.compress(self.learner.get_params())}

    def _train(self, round: int, rng: np.random.Generator) -> list[Send]:
        """One local epoch from the last model received; the update goes to the server once
        the training's simulated time has passed (the agent holds the send that long)."""
        assert self._base is not None
        version, model = self._base
        self._base = None
        self._trained_round = round
        self.waited = 0
        self.learner.set_params(model)
        self.train(rng)
        # pending_delay is this training's time: the agent dispatches (and resets) it.
        self._busy_until = round + math.ceil(self.pending_delay / self.period) - 1
        delta = self.learner.get_params() - model
        reply = {
            "round": version,
            "update": self.pack(self.compressor, delta),
            "samples": len(self.y),
        }
        return [(self.server, "update", reply)]

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        number = _round_of(body)
        if self.resting:
            return []
        if self.is_server:
            if kind == "beat":
                theirs = body.get("server")
                if type(theirs) is int and self._later(theirs, self.index):
                    # back from a repair to find a later candidate serving: step down
                    self.server, self.clients, self.waited = theirs, [], 0
                    return []
                return [(src, "fit", self._model())] if src in self.clients else []
            if kind == "fit" and src in self.candidates and src != self.index:
                if not self._later(src, self.index):  # an earlier server, back: we serve
                    return [(src, "beat", {"round": number, "server": self.index})]
                self.server, self.clients, self.waited = src, [], 0  # a later one serves
            elif kind != "update":
                raise ProtocolViolation(f"an async server does not accept {kind!r}")
            else:
                return self._apply(src, number, body)
        if kind == "beat":  # who serves now, from a member we told we served (or its clients)
            theirs = body.get("server")
            if type(theirs) is int and self._later(theirs, self.server):
                self.server = theirs
            return []
        if kind != "fit":
            raise ProtocolViolation(f"an async client accepts only its server's fit, not {kind!r}")
        if src != self.server:
            if self._later(src, self.server):
                self.server = src  # another client elected it first
            elif src in self.candidates:  # an earlier server, back: tell it who serves now
                return [(src, "beat", {"round": number, "server": self.server})]
            else:
                raise ProtocolViolation(f"a fit from {src}, who is no candidate server")
        model = self.unpack(body.get("model"), self.size)
        if model is None:
            return []
        self._base = (number, model)
        if self._trained_round < round and round > self._busy_until:  # one epoch at a time
            return self._train(round, rng)
        return []  # the next tick trains from it

    def _apply(self, src: int, version: int, body: dict[str, Any]) -> list[Send]:
        samples = body.get("samples")
        if type(samples) is not int or not 1 <= samples <= MAX_SAMPLES:
            self.rejected += 1
            return []
        if src not in self.clients or version > self.version:
            self.unknown += 1
            return []
        delta = self.unpack(body.get("update"), self.size)
        if delta is None:
            return [(src, "fit", self._model())]  # refused; the client goes on from ours
        stale = self.version - version
        weight = 1.0 / (1.0 + stale) if self.weighting == "inverse" else 1.0
        self.learner.set_params(self.learner.get_params() + weight * delta)
        self.version += 1
        self.staleness.append(stale)
        return [(src, "fit", self._model())]
