"""The flow's `settings.dhis2` section, checked by `palabre check` at file:line:column."""

from __future__ import annotations

from palabre import cli
from palabre.bootstrap import Toolkit, load_flows
from palabre.flow.loader import parse_flow
from palabre.flow.source import parse_source
from palabre.plugins import make_plugin_manager

FLOW_WITH_MISTAKES = """\
id: reg
settings:
  locales: [en]
  default_locale: en
  dhis2:
    program: IpHINAT79U
    atribute: lZGmxYbs97q
    org_unit: DiszpKrYNg8
    tracked_entity_type: nEenWmSyUEp
    org_unit_mode: EVERYWHERE
steps:
  q: {kind: ask, text: "Code?", save_as: code}
  reg: {kind: action, action: dhis2.register, with: {value: "{{ code }}"}, save_as: r}
  done: {kind: end, text: "ok"}
"""


def test_settings_problems_are_located_at_file_line_column(tmp_path):
    path = tmp_path / "reg.yaml"
    path.write_text(FLOW_WITH_MISTAKES)
    _, problems = load_flows([path], Toolkit.create(None, make_plugin_manager()))
    assert [str(p) for p in problems] == [
        f"{path}:6:5: settings.dhis2: missing attribute (each is an 11-character UID)",
        f"{path}:6:14: settings.dhis2.program: 'IpHINAT79U' is not a DHIS-2 UID "
        "(11 letters or digits, starting with a letter, e.g. IpHINAT79UW)",
        f"{path}:7:15: settings.dhis2.atribute: unknown key 'atribute' (did you mean 'attribute'?)",
        f"{path}:10:20: settings.dhis2.org_unit_mode: unknown mode 'EVERYWHERE' "
        "(known: ACCESSIBLE, ALL, CAPTURE, CHILDREN, DESCENDANTS, SELECTED)",
    ]


def test_palabre_check_reports_a_missing_dhis2_section_at_the_step(tmp_path, capsys):
    path = tmp_path / "reg.yaml"
    path.write_text(
        FLOW_WITH_MISTAKES.split("  dhis2:")[0] + "steps:" + FLOW_WITH_MISTAKES.split("steps:")[1]
    )
    status = cli.main(["check", str(path)], plugins=make_plugin_manager())
    out = capsys.readouterr().out
    assert status == 1
    assert f"{path}:7:31: steps.reg.action: dhis2.register needs a settings.dhis2 section" in out


def test_a_correct_section_has_no_problem():
    flow, _ = parse_flow(
        parse_source(
            FLOW_WITH_MISTAKES.replace("IpHINAT79U\n", "IpHINAT79UW\n")
            .replace("atribute", "attribute")
            .replace("EVERYWHERE", "ALL"),
            "ok.yaml",
        )
    )
    from palabre_dhis2.settings_check import check_dhis2_settings

    assert flow is not None and check_dhis2_settings(flow) == []
