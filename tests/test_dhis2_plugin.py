"""The DHIS-2 plugin's hooks: the actions it registers, and its UIDs."""

from __future__ import annotations

from palabre.plugins import collect_actions, make_plugin_manager
from palabre_dhis2.uid import generate_uid, is_uid


def test_the_plugin_offers_its_actions_and_a_uid_generator():
    actions = collect_actions(make_plugin_manager())
    assert actions["dhis2.register"].required == ("value",)
    assert actions["dhis2.flag_duplicate"].parameters == ("original", "duplicate")
    assert all(is_uid(generate_uid()) for _ in range(200))
