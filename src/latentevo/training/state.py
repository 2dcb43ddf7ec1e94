"""The resumable state most trainers have: the state_dicts of a few attributes (networks,
optimisers, schedulers) and the torch generator `g` that draws their batches."""

from __future__ import annotations


class StateDicts:
    """`state` / `load_state` for a trainer whose state is its `STATE_DICTS` attributes' state_dicts
    and `g`; checkpoints keep each under the attribute's name. A trainer with more state (a step
    count, a second generator) adds it to `super().state()` and reads it around `super().load_state`."""

    STATE_DICTS: tuple[str, ...] = ()

    def state(self) -> dict:
        return {name: getattr(self, name).state_dict() for name in self.STATE_DICTS} | {"g": self.g.get_state()}

    def load_state(self, state: dict) -> None:
        for name in self.STATE_DICTS:
            getattr(self, name).load_state_dict(state[name])
        self.g.set_state(state["g"])
