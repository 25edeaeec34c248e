"""The tracked-entity query parameters, which changed across DHIS-2 versions."""

from __future__ import annotations


def test_filter_values_are_escaped_from_2_41_only():
    from palabre_dhis2.params import escape_filter_value

    assert escape_filter_value("a:b,c/d", (2, 41)) == "a/:b/,c//d"
    assert escape_filter_value("a:b", (2, 40)) == "a:b"
