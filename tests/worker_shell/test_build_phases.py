"""The builder's phases are build states: the task stores each ``BuildPhase`` it hears as ``Build.state``."""

from __future__ import annotations

from builder.director import BuildPhase
from gallery.models import FINAL_STATES, BuildState


def test_every_build_phase_is_a_build_state_that_is_not_final() -> None:
    for phase in BuildPhase:
        assert phase.value in BuildState.values, phase
        assert BuildState(phase) == phase and BuildState(phase) not in FINAL_STATES


def test_the_phases_come_in_the_order_of_the_build_states() -> None:
    states = [state for state in BuildState.values if state in set(BuildPhase)]
    assert states == [phase.value for phase in BuildPhase]
