"""The two-level category taxonomy videos are classified into (level 1 ≈ 30 domains, level 2 ≈ 150).

A ``Taxonomy`` is a list of ``Category`` entries: level-1 categories have no parent, level-2 categories
name exactly one level-1 parent. It loads from and saves to YAML, JSON or CSV, validates itself on every
change (unique names and aliases, existing parents, no cycles, no orphans, two levels only) and gives
the index arrays the classifier heads need. Indices follow file order and stay stable under ``rename``.

Example:
    >>> tax = Taxonomy.default()
    >>> tax.parent("少女穿搭")
    '服饰'
    >>> tax.resolve("home cooking")
    '家常菜'
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidlens.errors import MissingDependencyError, NotFoundError, VidlensError

if TYPE_CHECKING:
    import torch

DEFAULT_TAXONOMY = Path(__file__).parent / "data" / "default_taxonomy.yaml"
LIBRARY_TAXONOMY_FILE = "taxonomy.yaml"  # a library's own taxonomy, in its root folder
CSV_FIELDS = ("name", "parent", "description", "aliases", "keywords")
_LIST_SEPARATOR = "|"
_RECORD_KEYS = {"name", "parent", "description", "aliases", "keywords", "children", "level"}


class TaxonomyError(VidlensError):
    """A taxonomy is invalid or an edit would make it so; the message names the offending entry."""


class DuplicateCategoryError(TaxonomyError):
    """Two categories share a name, or an alias is also another category's name or alias."""


class UnknownParentError(TaxonomyError):
    """A category names a parent that does not exist."""


class CategoryCycleError(TaxonomyError):
    """Following parents from a category comes back to it."""


class OrphanCategoryError(TaxonomyError):
    """A level-2 category has no parent: declared ``level: 2`` without one, or its parent is being removed."""


@dataclass
class Category:
    """One category.

    Attributes:
        name: unique display name (Chinese in the default taxonomy).
        parent: name of the level-1 parent; None for a level-1 category.
        description: one short sentence, also used for zero-shot matching.
        aliases: other names it is found by (the English name first in the default taxonomy).
        keywords: a few words typical of its videos.
    """

    name: str
    parent: str | None = None
    description: str = ""
    aliases: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)

    @property
    def level(self) -> int:
        """1 for a domain, 2 for a sub-domain."""
        return 1 if self.parent is None else 2

    @property
    def english_name(self) -> str:
        """The first alias written in ASCII, or "" if none."""
        return next((a for a in self.aliases if a.isascii()), "")


class Taxonomy:
    """A validated two-level category tree.

    Args:
        categories: the entries, level 1 and level 2 in any order; level-1 indices follow the order of
            the level-1 entries, level-2 indices the order of the level-2 entries.

    Raises:
        TaxonomyError: (or a subclass) when the entries do not form a valid two-level tree.
    """

    def __init__(self, categories: Iterable[Category]):
        self._set(list(categories))

    # ---- construction and validation -----------------------------------------------------------

    def _set(self, categories: list[Category]) -> None:
        """Validate ``categories`` and take them; ``self`` is untouched if they are invalid."""
        lookup = _validate(categories)
        self._categories = categories
        self._by_name = {c.name: c for c in categories}
        self._lookup = lookup
        self._l1 = [c.name for c in categories if c.parent is None]
        self._l2 = [c.name for c in categories if c.parent is not None]
        self._l1_index = {n: i for i, n in enumerate(self._l1)}
        self._l2_index = {n: i for i, n in enumerate(self._l2)}

    @classmethod
    def from_records(cls, records: Sequence[dict[str, Any]] | dict[str, Any]) -> Taxonomy:
        """Build from plain records: a list (or ``{"categories": [...]}``) of dicts with ``name`` and
        optional ``parent``, ``description``, ``aliases``, ``keywords``, ``level`` (1 or 2) and ``children``
        (nested level-2 records, whose parent is implied).

        Raises:
            TaxonomyError: a malformed record (unknown key, missing name), or an invalid tree.
        """
        if isinstance(records, dict):
            if "categories" not in records:
                raise TaxonomyError("taxonomy: expected a list of categories or a mapping with 'categories'")
            records = records["categories"]
        if not isinstance(records, list):
            raise TaxonomyError("taxonomy: 'categories' must be a list")
        categories: list[Category] = []
        for position, record in enumerate(records):
            category, nested = _category_from_record(record, f"entry {position + 1}")
            categories.append(category)
            for child_position, child in enumerate(nested):
                where = f"child {child_position + 1} of {category.name!r}"
                if not isinstance(child, dict):
                    raise TaxonomyError(f"taxonomy: {where} must be a mapping, got {type(child).__name__}")
                if child.get("parent") not in (None, "", category.name):
                    raise TaxonomyError(
                        f"taxonomy: {where} ({child.get('name')!r}) is nested under {category.name!r} "
                        f"but names parent {child['parent']!r}"
                    )
                if child.get("children"):
                    raise TaxonomyError(
                        f"taxonomy: {child.get('name')!r} (under {category.name!r}) has children; "
                        "the taxonomy has two levels"
                    )
                sub, _ = _category_from_record({**child, "parent": category.name}, where)
                categories.append(sub)
        return cls(categories)

    def to_records(self, nested: bool = True) -> list[dict[str, Any]]:
        """Plain records: nested (level 2 under its parent's ``children``) or flat (with ``parent``)."""

        def record(c: Category, with_parent: bool) -> dict[str, Any]:
            out: dict[str, Any] = {"name": c.name}
            if with_parent and c.parent is not None:
                out["parent"] = c.parent
            if c.aliases:
                out["aliases"] = list(c.aliases)
            if c.description:
                out["description"] = c.description
            if c.keywords:
                out["keywords"] = list(c.keywords)
            return out

        if not nested:
            return [record(c, True) for c in self._categories]
        out = []
        for name in self._l1:
            entry = record(self._by_name[name], False)
            kids = [record(self._by_name[k], False) for k in self.children(name)]
            if kids:
                entry["children"] = kids
            out.append(entry)
        return out

    # ---- files -------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Taxonomy:
        """Load a ``.yaml``/``.yml``, ``.json`` or ``.csv`` file.

        CSV columns: ``name, parent, description, aliases, keywords``; lists are separated by ``|``.

        Raises:
            NotFoundError: no such file.
            TaxonomyError: unknown extension, unreadable content or an invalid tree.
        """
        path = Path(path)
        if not path.is_file():
            raise NotFoundError(f"{path}: taxonomy file not found")
        text = path.read_text(encoding="utf-8-sig")
        suffix = path.suffix.lower()
        try:
            if suffix in (".yaml", ".yml"):
                yaml = _yaml()
                data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            elif suffix == ".json":
                data = json.loads(text)
            elif suffix == ".csv":
                data = _records_from_csv(text)
            else:
                raise TaxonomyError(f"{path}: unknown taxonomy format {suffix!r} (use .yaml, .json or .csv)")
        except (ValueError, _yaml_error()) as exc:
            raise TaxonomyError(f"{path}: cannot parse: {exc}") from None
        try:
            return cls.from_records(data)
        except TaxonomyError as exc:
            raise type(exc)(f"{path}: {exc}") from None

    @classmethod
    def default(cls) -> Taxonomy:
        """The taxonomy shipped with vidlens: 31 domains and 150 sub-domains of a Chinese short-video and
        e-commerce platform, Chinese names with English aliases, descriptions and keywords."""
        return cls.load(DEFAULT_TAXONOMY)

    def save(self, path: str | Path) -> None:
        """Write to ``.yaml``/``.yml``, ``.json`` (nested records) or ``.csv`` (flat), by extension;
        atomically (a temporary file beside it, then a rename), so a crash leaves the old file whole."""
        path = Path(path)
        text = self.dumps(path.suffix, where=str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)

    def nesting_keeps_order(self) -> bool:
        """Whether listing level-2 categories under their parents keeps their indices: true when each
        parent's children are consecutive and the parents come in level-1 order."""
        return [n for a in self._l1 for n in self.children(a)] == self._l2

    def dumps(self, suffix: str = ".yaml", where: str = "taxonomy") -> str:
        """The text :meth:`save` writes for a file ending in ``suffix`` (``.yaml``, ``.json`` or ``.csv``).

        YAML and JSON nest level 2 under level 1 when that keeps every index (:meth:`nesting_keeps_order`),
        and are flat records with ``parent`` otherwise, so that loading the file gives the same indices
        (and fingerprint) as the taxonomy that wrote it: a trained model's outputs are indexed by them."""
        suffix = suffix.lower()
        records = self.to_records(nested=self.nesting_keeps_order())
        if suffix in (".yaml", ".yml"):
            text = _yaml().safe_dump(
                {"categories": records},
                allow_unicode=True,
                sort_keys=False,
                width=120,
                default_flow_style=None,
            )
        elif suffix == ".json":
            text = json.dumps({"categories": records}, ensure_ascii=False, indent=2) + "\n"
        elif suffix == ".csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
            writer.writeheader()
            for c in self._categories:
                writer.writerow(
                    {
                        "name": c.name,
                        "parent": c.parent or "",
                        "description": c.description,
                        "aliases": _LIST_SEPARATOR.join(c.aliases),
                        "keywords": _LIST_SEPARATOR.join(c.keywords),
                    }
                )
            text = buffer.getvalue()
        else:
            raise TaxonomyError(f"{where}: unknown taxonomy format {suffix!r} (use .yaml, .json or .csv)")
        return text

    # ---- lookups -----------------------------------------------------------------------------

    @property
    def categories(self) -> list[Category]:
        """All entries, in storage order (copies; edit through ``add``/``rename``/``remove``)."""
        return [Category(**asdict(c)) for c in self._categories]

    @property
    def l1_names(self) -> list[str]:
        """Level-1 names in index order."""
        return list(self._l1)

    @property
    def l2_names(self) -> list[str]:
        """Level-2 names in index order."""
        return list(self._l2)

    @property
    def num_l1(self) -> int:
        """Number of level-1 categories."""
        return len(self._l1)

    @property
    def num_l2(self) -> int:
        """Number of level-2 categories."""
        return len(self._l2)

    @property
    def l1_index(self) -> dict[str, int]:
        """Level-1 name -> index."""
        return dict(self._l1_index)

    @property
    def l2_index(self) -> dict[str, int]:
        """Level-2 name -> index."""
        return dict(self._l2_index)

    @property
    def l2_to_l1(self) -> np.ndarray:
        """(num_l2,) int64: the level-1 index of each level-2 category, for the classifier heads."""
        return np.array([self._l1_index[self._by_name[n].parent] for n in self._l2], dtype=np.int64)

    def l2_to_l1_tensor(self) -> torch.Tensor:
        """``l2_to_l1`` as a torch long tensor."""
        import torch

        return torch.from_numpy(self.l2_to_l1)

    def get(self, name: str) -> Category:
        """The category with this name or alias (aliases match case-insensitively).

        Raises:
            NotFoundError: no such category.
        """
        return Category(**asdict(self._by_name[self.resolve(name)]))

    def resolve(self, name: str) -> str:
        """The canonical name for a name or alias.

        Raises:
            NotFoundError: no such category.
        """
        if name in self._by_name:
            return name
        try:
            return self._lookup[name.strip().casefold()]
        except KeyError:
            raise NotFoundError(f"taxonomy has no category or alias {name!r}") from None

    def parent(self, name: str) -> str | None:
        """Level-1 parent of a level-2 category; None for a level-1 category."""
        return self._by_name[self.resolve(name)].parent

    def level1_of(self, name: str) -> str:
        """The level-1 category a category belongs to (itself if it is level 1)."""
        canonical = self.resolve(name)
        return self._by_name[canonical].parent or canonical

    def children(self, name: str) -> list[str]:
        """Level-2 children of a level-1 category, in index order."""
        canonical = self.resolve(name)
        return [n for n in self._l2 if self._by_name[n].parent == canonical]

    def fingerprint(self) -> str:
        """A short hash of the tree's structure (names and parents, in index order); models record it to
        notice that they are used with a different taxonomy."""
        structure = json.dumps(
            [self._l1, [[n, self._by_name[n].parent] for n in self._l2]], ensure_ascii=False
        )
        return hashlib.sha256(structure.encode("utf-8")).hexdigest()[:16]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._by_name or name.strip().casefold() in self._lookup)

    def __len__(self) -> int:
        return len(self._categories)

    def __iter__(self) -> Iterator[Category]:
        return iter(self.categories)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Taxonomy) and self._categories == other._categories

    def __repr__(self) -> str:
        return f"Taxonomy({self.num_l1} level-1, {self.num_l2} level-2 categories)"

    # ---- edits ---------------------------------------------------------------------------------

    def add(
        self,
        name: str,
        parent: str | None = None,
        description: str = "",
        aliases: Sequence[str] = (),
        keywords: Sequence[str] = (),
    ) -> Category:
        """Add a category (level 1 without ``parent``, level 2 under an existing level-1 ``parent``).

        New categories get the next index of their level, so existing indices are unchanged.

        Raises:
            TaxonomyError: the result would be invalid (duplicate name, unknown parent, three levels).
        """
        category = Category(
            name=name.strip(),
            parent=self.resolve(parent) if parent is not None and parent in self else parent,
            description=description,
            aliases=list(aliases),
            keywords=list(keywords),
        )
        self._set([*self._categories, category])
        return Category(**asdict(category))

    def update(
        self,
        name: str,
        description: str | None = None,
        aliases: Sequence[str] | None = None,
        keywords: Sequence[str] | None = None,
    ) -> Category:
        """Replace what describes a category (``None`` leaves a field as it is); names and indices stay.

        Raises:
            NotFoundError: no such category.
            DuplicateCategoryError: an alias is taken by another category.
        """
        canonical = self.resolve(name)
        updated = [Category(**asdict(c)) for c in self._categories]
        for c in updated:
            if c.name == canonical:
                if description is not None:
                    c.description = description
                if aliases is not None:
                    c.aliases = list(aliases)
                if keywords is not None:
                    c.keywords = list(keywords)
        self._set(updated)
        return Category(**asdict(self._by_name[canonical]))

    def rename(self, old: str, new: str) -> None:
        """Rename a category (children follow); its index does not change.

        Raises:
            NotFoundError: ``old`` does not exist.
            DuplicateCategoryError: ``new`` is taken.
        """
        canonical = self.resolve(old)
        new = new.strip()
        updated = []
        for c in self._categories:
            c = Category(**asdict(c))
            if c.name == canonical:
                c.name = new
            if c.parent == canonical:
                c.parent = new
            updated.append(c)
        self._set(updated)

    def move(self, name: str, new_parent: str) -> None:
        """Put a level-2 category under another level-1 parent.

        Raises:
            TaxonomyError: ``name`` is level 1, or ``new_parent`` is not a level-1 category.
        """
        canonical = self.resolve(name)
        if self._by_name[canonical].parent is None:
            raise TaxonomyError(f"taxonomy: {canonical!r} is level 1; only level-2 categories can move")
        parent = self.resolve(new_parent) if new_parent in self else new_parent
        updated = [Category(**asdict(c)) for c in self._categories]
        for c in updated:
            if c.name == canonical:
                c.parent = parent
        self._set(updated)

    def remove(self, name: str, cascade: bool = False) -> list[str]:
        """Remove a category; with ``cascade`` also its children. Returns the removed names.

        Indices of later categories shift down by the number removed: retrain or remap models.

        Raises:
            NotFoundError: no such category.
            OrphanCategoryError: it has children and ``cascade`` is False.
        """
        canonical = self.resolve(name)
        kids = self.children(canonical) if self._by_name[canonical].parent is None else []
        if kids and not cascade:
            shown = ", ".join(repr(k) for k in kids[:5]) + (" …" if len(kids) > 5 else "")
            raise OrphanCategoryError(
                f"taxonomy: removing {canonical!r} would orphan its {len(kids)} subcategories ({shown}); "
                "move them first or pass cascade=True"
            )
        removed = {canonical, *kids}
        self._set([Category(**asdict(c)) for c in self._categories if c.name not in removed])
        return [canonical, *kids]


def library_taxonomy_path(root: str | Path) -> Path:
    """Where a library keeps its own taxonomy (``LIBRARY/taxonomy.yaml``)."""
    return Path(root) / LIBRARY_TAXONOMY_FILE


def library_taxonomy(root: str | Path) -> tuple[Taxonomy, str]:
    """A library's own taxonomy and ``"library"``, or the shipped default and ``"default"`` when it has none.

    Raises:
        TaxonomyError: the library's file is invalid (the error names it).
    """
    path = library_taxonomy_path(root)
    return (Taxonomy.load(path), "library") if path.is_file() else (Taxonomy.default(), "default")


def save_library_taxonomy(root: str | Path, taxonomy: Taxonomy) -> Path:
    """Write a library's taxonomy (atomically, as :meth:`Taxonomy.save` does); returns the path."""
    path = library_taxonomy_path(root)
    taxonomy.save(path)
    return path


# ---- helpers -----------------------------------------------------------------------------------


def _category_from_record(record: Any, where: str) -> tuple[Category, list[Any]]:
    if not isinstance(record, dict):
        raise TaxonomyError(f"taxonomy: {where} must be a mapping, got {type(record).__name__}")
    unknown = sorted(set(record) - _RECORD_KEYS)
    if unknown:
        raise TaxonomyError(
            f"taxonomy: {where} ({record.get('name')!r}) has unknown key {unknown[0]!r}; "
            f"allowed: {', '.join(sorted(_RECORD_KEYS))}"
        )
    name = record.get("name")
    if not isinstance(name, str) or not name.strip():
        raise TaxonomyError(f"taxonomy: {where} has no name")
    name = name.strip()
    parent = record.get("parent") or None
    if parent is not None:
        parent = str(parent).strip() or None
    level = record.get("level")
    if level not in (None, 1, 2, "1", "2"):
        raise TaxonomyError(f"taxonomy: {name!r} has level {level!r}; levels are 1 and 2")
    if level in (2, "2") and parent is None:
        raise OrphanCategoryError(f"taxonomy: {name!r} is declared level 2 but has no parent")
    if level in (1, "1") and parent is not None:
        raise TaxonomyError(f"taxonomy: {name!r} is declared level 1 but has parent {parent!r}")
    children = record.get("children") or []
    if children and parent is not None:
        raise TaxonomyError(
            f"taxonomy: {name!r} has parent {parent!r} and children; the taxonomy has two levels"
        )
    return (
        Category(
            name=name,
            parent=parent,
            description=str(record.get("description") or "").strip(),
            aliases=_string_list(record.get("aliases"), name, "aliases"),
            keywords=_string_list(record.get("keywords"), name, "keywords"),
        ),
        list(children),
    )


def _string_list(value: Any, name: str, key: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(_LIST_SEPARATOR)
    if not isinstance(value, list):
        raise TaxonomyError(f"taxonomy: {name!r}: {key} must be a list of strings")
    return [str(v).strip() for v in value if str(v).strip()]


def _validate(categories: list[Category]) -> dict[str, str]:
    """Check the tree; return the case-insensitive name/alias -> name lookup."""
    by_name: dict[str, Category] = {}
    for c in categories:
        if not c.name:
            raise TaxonomyError("taxonomy: a category has an empty name")
        if c.name in by_name:
            raise DuplicateCategoryError(f"taxonomy: category name {c.name!r} is used more than once")
        by_name[c.name] = c
    lookup: dict[str, str] = {}
    for c in categories:
        for key in dict.fromkeys([c.name.casefold(), *(a.casefold() for a in c.aliases)]):
            owner = lookup.get(key)
            if owner is not None and owner != c.name:
                raise DuplicateCategoryError(
                    f"taxonomy: {key!r} names both {owner!r} and {c.name!r} (as name or alias)"
                )
            lookup[key] = c.name
    for c in categories:
        if c.parent is None:
            continue
        if c.parent == c.name:
            raise CategoryCycleError(f"taxonomy: {c.name!r} is its own parent")
        if c.parent not in by_name:
            raise UnknownParentError(f"taxonomy: {c.name!r} has unknown parent {c.parent!r}")
    for c in categories:
        path = [c.name]
        node = c
        while node.parent is not None:
            if node.parent in path:
                cycle = [*path[path.index(node.parent) :], node.parent]
                raise CategoryCycleError(f"taxonomy: parent cycle {' -> '.join(repr(n) for n in cycle)}")
            path.append(node.parent)
            node = by_name[node.parent]
    for c in categories:
        if c.parent is not None and by_name[c.parent].parent is not None:
            raise TaxonomyError(
                f"taxonomy: {c.name!r} has parent {c.parent!r}, which is itself level 2; "
                "the taxonomy has two levels"
            )
    return lookup


def _records_from_csv(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "name" not in reader.fieldnames:
        raise TaxonomyError("taxonomy CSV needs a header with at least a 'name' column")
    unknown = sorted(set(reader.fieldnames) - set(CSV_FIELDS) - {"level"})
    if unknown:
        raise TaxonomyError(
            f"taxonomy CSV has unknown column {unknown[0]!r}; allowed: {', '.join(CSV_FIELDS)}"
        )
    return [{k: v for k, v in row.items() if v not in (None, "")} for row in reader]


def _yaml():
    try:
        import yaml
    except ImportError:
        raise MissingDependencyError("YAML taxonomy files", "pip install pyyaml") from None
    return yaml


def _yaml_error() -> type[Exception]:
    try:
        import yaml
    except ImportError:
        return ValueError
    return yaml.YAMLError


__all__ = [
    "LIBRARY_TAXONOMY_FILE",
    "Category",
    "CategoryCycleError",
    "DuplicateCategoryError",
    "OrphanCategoryError",
    "Taxonomy",
    "TaxonomyError",
    "UnknownParentError",
    "library_taxonomy",
    "library_taxonomy_path",
    "save_library_taxonomy",
]
