"""The library's category taxonomy: read it, replace it (validated as a whole)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status

from vidlens.service import schemas
from vidlens.service.routers._common import API
from vidlens.service.security import require_token
from vidlens.service.state import ServiceState, get_state
from vidlens.taxonomy import LIBRARY_TAXONOMY_FILE, Taxonomy, TaxonomyError

router = APIRouter(prefix=f"{API}/taxonomy", tags=["taxonomy"])
State = Annotated[ServiceState, Depends(get_state)]


def taxonomy_path(state: ServiceState) -> Path:
    """Where the library keeps its own taxonomy (the classification engine may name another place)."""
    hook = state.hooks.get("taxonomy_path")
    return hook(state) if hook else state.lib.root / LIBRARY_TAXONOMY_FILE


def load(state: ServiceState) -> tuple[Taxonomy, str]:
    """The library's taxonomy, or the shipped default when it has none."""
    path = taxonomy_path(state)
    if path.is_file():
        return Taxonomy.load(path), "library"
    return Taxonomy.default(), "default"


def _out(tax: Taxonomy, source: str) -> dict[str, Any]:
    return {"source": source, "level1": tax.num_l1, "level2": tax.num_l2, "fingerprint": tax.fingerprint(),
            "categories": tax.to_records()}


@router.get("", response_model=schemas.TaxonomyOut)
def get_taxonomy(state: State) -> dict[str, Any]:
    """The two-level taxonomy (level-1 records with nested ``children``)."""
    tax, source = load(state)
    return _out(tax, source)


@router.put("", response_model=schemas.TaxonomyOut, dependencies=[Depends(require_token)],
            responses={400: {"model": schemas.Problem}})
def put_taxonomy(body: schemas.TaxonomyBody, state: State) -> dict[str, Any]:
    """Replace the library's taxonomy; an invalid tree is refused whole with the reason (400)."""
    try:
        tax = Taxonomy.from_records(body.categories)
    except (TaxonomyError, TypeError, ValueError, AttributeError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"invalid taxonomy: {exc}") from None
    tax.save(taxonomy_path(state))  # atomic: a crash leaves the old file whole
    return _out(tax, "library")
