"""End-to-end: ``vidlens taxonomy`` edits the library's own tree, as a real subprocess."""

from __future__ import annotations

import json

import pytest
from _cli import run_vidlens

from vidlens.taxonomy import Taxonomy, library_taxonomy, library_taxonomy_path, save_library_taxonomy

run = run_vidlens


def test_library_taxonomy_falls_back_to_the_default_and_saves_atomically(tmp_path):
    tax, source = library_taxonomy(tmp_path)
    assert source == "default" and tax.fingerprint() == Taxonomy.default().fingerprint()
    tax.add("露营装备", parent=tax.l1_names[0], description="帐篷睡袋的开箱测评", keywords=["帐篷"])
    before = set(tax.l2_names)
    tax.update("露营装备", aliases=["camping gear"])
    path = save_library_taxonomy(tmp_path, tax)
    assert path == library_taxonomy_path(tmp_path) and not list(tmp_path.glob(".*tmp*"))
    again, source = library_taxonomy(tmp_path)
    assert source == "library" and set(again.l2_names) == before
    (gear,) = [c for c in again.categories if c.name == "露营装备"]
    assert gear.aliases == ["camping gear"] and gear.keywords == ["帐篷"] and gear.description.startswith("帐篷")


@pytest.mark.timeout(600)
def test_taxonomy_cli_edits_validates_and_refuses_bad_edits(tmp_path):
    lib = tmp_path / "lib"
    shown = json.loads(run("-L", lib, "taxonomy", "show", "--json").stdout)
    assert shown["source"] == "default" and shown["level1"] == len(shown["categories"])
    mine = tmp_path / "mine.yaml"
    mine.write_text("categories:\n- name: 美食\n  children:\n  - {name: 家常菜}\n  - {name: 烘焙}\n"
                    "- name: 户外\n  children:\n  - {name: 徒步}\n", encoding="utf-8")
    run("-L", lib, "taxonomy", "import", mine)
    run("-L", lib, "taxonomy", "add", "露营", "--parent", "户外", "--description", "帐篷与营地生活",
        "--keyword", "帐篷", "--keyword", "营地")
    run("-L", lib, "taxonomy", "describe", "烘焙", "--alias", "baking", "--keyword", "蛋糕")
    run("-L", lib, "taxonomy", "describe", "baking", "--add-keyword", "面包", "--add-keyword", "蛋糕")
    run("-L", lib, "taxonomy", "rename", "徒步", "登山徒步")
    run("-L", lib, "taxonomy", "move", "烘焙", "户外")
    tax = Taxonomy.load(lib / "taxonomy.yaml")
    assert set(tax.children("户外")) == {"烘焙", "登山徒步", "露营"} and tax.children("美食") == ["家常菜"]
    assert tax.resolve("baking") == "烘焙" and tax.resolve("徒步") == "登山徒步"  # the old name stays an alias
    assert [c.keywords for c in tax.categories if c.name == "烘焙"] == [["蛋糕", "面包"]]

    # bad edits: a clear error naming the problem, exit 2, and the file untouched
    before = (lib / "taxonomy.yaml").read_bytes()
    bad = run("-L", lib, "taxonomy", "add", "X", "--parent", "不存在", check=False)
    assert bad.returncode == 2 and "不存在" in bad.stderr
    orphan = run("-L", lib, "taxonomy", "remove", "户外", check=False)
    assert orphan.returncode == 2 and "orphan" in orphan.stderr
    dup = run("-L", lib, "taxonomy", "add", "家常菜", "--parent", "美食", check=False)
    assert dup.returncode == 2 and "家常菜" in dup.stderr
    assert (lib / "taxonomy.yaml").read_bytes() == before

    removed = run("-L", lib, "taxonomy", "remove", "户外", "--cascade")
    assert "露营" in removed.stdout
    out = tmp_path / "out.csv"
    run("-L", lib, "taxonomy", "export", "-o", out)
    assert "valid, 1 level-1 / 1 level-2" in run("taxonomy", "validate", out).stdout
    cycle = tmp_path / "cycle.csv"
    cycle.write_text("name,parent\na,b\nb,a\n", encoding="utf-8")
    invalid = run("taxonomy", "validate", cycle, check=False)
    assert invalid.returncode == 2 and "error" in invalid.stderr
