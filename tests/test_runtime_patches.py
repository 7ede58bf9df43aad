"""Patches that move a runtime's memory setting with the limit, on hand-made rows: the variable merged by name,
a command-line flag left to a person with the exact edit (PATCHES.md), an unknown setting said, never patched."""
from __future__ import annotations

from patchfixtures import config, rec, recs, snapshot
from rightsize.emit.patches import build_patch, write_patches


def _runtime(row: dict, **kw) -> dict:
    return {**row, "runtime": "jvm", "runtime_setting": "-Xmx (env JAVA_TOOL_OPTIONS)", "heap_bytes_current": 2.0 * 2**30,
            "heap_bytes_recommended": 754.0 * 2**20, "runtime_setting_action": "patch",
            "runtime_setting_edit": 'env JAVA_TOOL_OPTIONS: "-Xmx2g -Dx=1" -> "-Xmx754m -Dx=1"',
            "runtime_env_json": '{"JAVA_TOOL_OPTIONS": "-Xmx754m -Dx=1"}', **kw}


def test_the_variable_goes_into_the_patch_even_without_the_container_order():
    row = _runtime(rec("shop", "Deployment", "orders", "app"))
    patch = build_patch("c1", "shop", "Deployment", "orders", [row])  # no manifest: only the patched container is named
    [entry] = patch.body["spec"]["template"]["spec"]["containers"]
    assert entry["env"] == [{"name": "JAVA_TOOL_OPTIONS", "value": "-Xmx754m -Dx=1"}] and entry["resources"]["requests"]
    # a change of the variable alone is still something to write
    only_env = _runtime(rec("shop", "Deployment", "orders", "app", cpu=("500m", None), memory=("1Gi", None)))
    [entry] = build_patch("c1", "shop", "Deployment", "orders", [only_env]).body["spec"]["template"]["spec"]["containers"]
    assert entry == {"name": "app", "env": [{"name": "JAVA_TOOL_OPTIONS", "value": "-Xmx754m -Dx=1"}]}


def test_a_command_line_flag_is_left_to_a_person_with_the_exact_edit(tmp_path):
    by_hand = _runtime(rec("shop", "Deployment", "billing", "app"), runtime_setting="-Xmx (args[0])", runtime_env_json="",
                       runtime_setting_action="by_hand", runtime_setting_edit='args[0]: "-Xmx1g" -> "-Xmx463m"')
    unknown = _runtime(rec("shop", "Deployment", "ledger", "app"), runtime_setting="", runtime_env_json="",
                       runtime_setting_action="unknown", runtime_setting_edit="")
    result = write_patches(recs(by_hand, unknown), snapshot(), config(), tmp_path / "p")
    body = (tmp_path / "p" / "c1" / "shop" / "deployment-billing.yaml").read_text()
    assert "env:" not in body.split("\napiVersion")[-1]  # nothing rewritten in the manifest's args
    edit = ('shop/Deployment/billing container app: edit its jvm memory setting by hand (a patch cannot rewrite command '
            'or args): args[0]: "-Xmx1g" -> "-Xmx463m"')
    assert edit in result.notes
    md = (tmp_path / "p" / "PATCHES.md").read_text()
    assert edit.replace("[", "\\[").replace("]", "\\]") in md  # PATCHES.md escapes Markdown's brackets
    assert "shop/Deployment/ledger container app: its jvm memory setting is unknown from the spec" in md
