"""Register files, folders or manifests that are already on the server (no upload)."""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status

from vidlens.service import schemas
from vidlens.service.routers._common import API
from vidlens.service.security import require_token
from vidlens.service.state import ServiceState, get_state
from vidlens.service.tasks import inside

router = APIRouter(prefix=API, tags=["ingest"])
State = Annotated[ServiceState, Depends(get_state)]


@router.post("/ingest", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.JobSubmitted,
             dependencies=[Depends(require_token)],
             responses={code: {"model": schemas.Problem} for code in (400, 403, 404)})
def ingest_paths(body: schemas.IngestRequest, state: State) -> dict[str, Any]:
    """Queue an ``ingest`` job for server paths (files, folders, .jsonl/.json/.csv manifests).

    Only paths under the server's ``--ingest-root`` folders are accepted (none by default), after
    resolving links and ``..``; manifest rows pointing elsewhere fail one by one.
    """
    roots = state.settings.ingest_roots
    if not roots:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "this server registers no server paths (start it with --ingest-root DIR)")
    paths = []
    for given in body.paths:
        if "\x00" in given or not given.strip():
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "empty path or NUL byte in a path")
        path = given if os.path.isabs(given) else os.path.join(str(roots[0]), given)
        if not inside(path, roots):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{given!r} is outside the allowed ingest roots")
        if not os.path.exists(path):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{given!r} does not exist on the server")
        paths.append(os.path.realpath(path))
    job, created = state.queue.submit("ingest", {"paths": sorted(paths), "analyse": body.analyse})
    state.runner.wake()
    return {"job": job, "created": created}
