"""Tests of vidlens.taxonomy: the default tree, file round trips, validation errors and edits."""

from __future__ import annotations

import numpy as np
import pytest

from vidlens.errors import NotFoundError, VidlensError
from vidlens.taxonomy import (
    CategoryCycleError,
    DuplicateCategoryError,
    OrphanCategoryError,
    Taxonomy,
    TaxonomyError,
    UnknownParentError,
)


@pytest.fixture(scope="module")
def default() -> Taxonomy:
    return Taxonomy.default()


def _small() -> Taxonomy:
    return Taxonomy.from_records(
        [
            {
                "name": "服饰",
                "aliases": ["Apparel"],
                "children": [{"name": "少女穿搭"}, {"name": "男士穿搭"}],
            },
            {"name": "美食", "aliases": ["Food"], "keywords": ["做饭"], "children": [{"name": "家常菜"}]},
            {"name": "游戏", "description": "游戏实况"},
            {"name": "手游", "parent": "游戏", "aliases": ["Mobile Games"]},
        ]
    )


def test_default_taxonomy_has_about_30_domains_and_150_subdomains(default):
    assert 28 <= default.num_l1 <= 35
    assert 140 <= default.num_l2 <= 170
    assert default.parent("少女穿搭") == "服饰"
    assert default.parent("家常菜") == "美食"
    assert default.parent("手游") == "游戏"
    for category in default:
        assert category.english_name, category.name
        assert category.description, category.name
        assert len(category.keywords) >= 3, category.name
    assert all(default.children(name) for name in default.l1_names)


def test_index_arrays_agree_with_the_tree(default):
    parents = default.l2_to_l1
    assert parents.dtype == np.int64 and parents.shape == (default.num_l2,)
    for name, index in default.l2_index.items():
        assert default.l1_names[parents[index]] == default.parent(name)
    tensor = default.l2_to_l1_tensor()
    assert tensor.tolist() == parents.tolist() and str(tensor.dtype) == "torch.int64"
    assert default.l1_index[default.l1_names[3]] == 3


def test_lookup_by_alias_is_case_insensitive(default):
    assert default.resolve("mobile games") == "手游"
    assert default.get("Home Cooking").name == "家常菜"
    assert default.level1_of("home cooking") == "美食"
    assert "APPAREL" in default and "不存在" not in default
    with pytest.raises(NotFoundError, match="不存在"):
        default.resolve("不存在")


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".csv"])
def test_round_trip_through_files(default, tmp_path, suffix):
    path = tmp_path / f"taxonomy{suffix}"
    default.save(path)
    again = Taxonomy.load(path)
    assert again == default
    assert again.fingerprint() == default.fingerprint()
    assert again.l2_to_l1.tolist() == default.l2_to_l1.tolist()


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".csv"])
def test_files_keep_the_indices_of_a_tree_whose_children_interleave(tmp_path, suffix):
    # as taxonomies made from data come: level 2 in order of first appearance, parents interleaved
    tax = Taxonomy.from_records([{"name": "A"}, {"name": "B"}, {"name": "a1", "parent": "A"},
                                 {"name": "b1", "parent": "B"}, {"name": "a2", "parent": "A"}])
    tax.add("a3", parent="A")  # add-category appends too
    assert not tax.nesting_keeps_order()
    path = tmp_path / f"t{suffix}"
    tax.save(path)
    again = Taxonomy.load(path)
    assert again.l2_names == ["a1", "b1", "a2", "a3"] and again.fingerprint() == tax.fingerprint()
    grouped = Taxonomy.from_records([{"name": "A", "children": [{"name": "a1"}]}, {"name": "B"}])
    assert grouped.nesting_keeps_order() and "children" in grouped.dumps(".yaml")  # readable when it can be


@pytest.mark.parametrize(
    ("records", "error", "named"),
    [
        ([{"name": "美食"}, {"name": "美食"}], DuplicateCategoryError, "'美食'"),
        (
            [{"name": "美食", "aliases": ["Food"]}, {"name": "饮品", "aliases": ["food"]}],
            DuplicateCategoryError,
            "'饮品'",
        ),
        ([{"name": "美食"}, {"name": "家常菜", "parent": "美食类"}], UnknownParentError, "'美食类'"),
        (
            [{"name": "甲", "parent": "乙"}, {"name": "乙", "parent": "甲"}],
            CategoryCycleError,
            "'甲' -> '乙' -> '甲'",
        ),
        ([{"name": "甲", "parent": "甲"}], CategoryCycleError, "'甲'"),
        ([{"name": "美食"}, {"name": "家常菜", "level": 2}], OrphanCategoryError, "'家常菜'"),
        (
            [{"name": "美食"}, {"name": "家常菜", "parent": "美食"}, {"name": "红烧肉", "parent": "家常菜"}],
            TaxonomyError,
            "'红烧肉'",
        ),
        ([{"name": "美食", "parnet": "x"}], TaxonomyError, "'parnet'"),
        (
            [{"name": "美食", "children": [{"name": "家常菜", "children": [{"name": "红烧肉"}]}]}],
            TaxonomyError,
            "'家常菜'",
        ),
        ([{"description": "no name"}], TaxonomyError, "entry 1"),
    ],
    ids=[
        "duplicate",
        "alias-clash",
        "unknown-parent",
        "cycle",
        "self-parent",
        "orphan",
        "three-levels",
        "unknown-key",
        "nested-three-levels",
        "no-name",
    ],
)
def test_validation_errors_name_the_offending_entry(records, error, named):
    with pytest.raises(error) as info:
        Taxonomy.from_records(records)
    assert named in str(info.value)
    assert isinstance(info.value, VidlensError)


def test_load_reports_the_file_and_bad_formats(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("categories:\n  - name: 美食\n  - name: 美食\n", encoding="utf-8")
    with pytest.raises(DuplicateCategoryError, match=r"bad\.yaml"):
        Taxonomy.load(bad)
    (tmp_path / "t.txt").write_text("x", encoding="utf-8")
    with pytest.raises(TaxonomyError, match="unknown taxonomy format"):
        Taxonomy.load(tmp_path / "t.txt")
    with pytest.raises(NotFoundError):
        Taxonomy.load(tmp_path / "missing.yaml")
    csv_path = tmp_path / "t.csv"
    csv_path.write_text(
        "name,parent,aliases\n美食,,Food|Cooking\n家常菜,美食,Home Cooking\n", encoding="utf-8"
    )
    loaded = Taxonomy.load(csv_path)
    assert loaded.get("cooking").name == "美食" and loaded.parent("家常菜") == "美食"


def test_edits_keep_indices_and_stay_valid():
    tax = _small()
    assert tax.l2_names == ["少女穿搭", "男士穿搭", "家常菜", "手游"]
    assert tax.l2_to_l1.tolist() == [0, 0, 1, 2]

    tax.add("烘焙甜点", parent="Food", aliases=["Baking"])
    assert tax.parent("烘焙甜点") == "美食" and tax.l2_index["烘焙甜点"] == 4

    tax.rename("美食", "美食烹饪")
    assert tax.parent("家常菜") == "美食烹饪" and tax.l1_index["美食烹饪"] == 1

    tax.move("烘焙甜点", "服饰")
    assert tax.l2_to_l1.tolist() == [0, 0, 1, 2, 0]

    before = tax.categories
    with pytest.raises(DuplicateCategoryError):
        tax.add("手游", parent="游戏")
    with pytest.raises(UnknownParentError):
        tax.add("端游", parent="电竞")
    with pytest.raises(DuplicateCategoryError):
        tax.rename("家常菜", "手游")
    with pytest.raises(TaxonomyError, match="level 1"):
        tax.move("游戏", "服饰")
    assert tax.categories == before  # failed edits change nothing

    with pytest.raises(OrphanCategoryError, match=r"'游戏'.*'手游'"):
        tax.remove("游戏")
    assert tax.remove("游戏", cascade=True) == ["游戏", "手游"]
    assert tax.num_l1 == 2 and "手游" not in tax
    assert tax.remove("男士穿搭") == ["男士穿搭"]
    assert tax.l2_names == ["少女穿搭", "家常菜", "烘焙甜点"]
