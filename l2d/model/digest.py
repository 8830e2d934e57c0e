"""An export's digest: the sha256 of each of its files, written last and checked before it loads, so that an
edited config (σ, start, the base it records) or a truncated or changed weight file is refused in one line that
names the file, instead of loading into a model that is not the one trained.

The digest finds accidents (an edit, a copy cut short, a damaged disk), not forgery: anyone who edits a file can
write its new sum too. The model card (README.md) is not covered: it is prose that may be edited for the hub.
Exports written before digests existed still load, with a warning; opting out of every check of this module
(`L2D_UNVERIFIED_EXPORTS=1`) turns its errors into warnings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

DIGEST_FILE = "l2d_digest.json"
FORMAT = "l2d-export-digest"
UNCOVERED = ("README.md", DIGEST_FILE)
OPT_OUT = "L2D_UNVERIFIED_EXPORTS"
DIGEST_VERSION = 2  # the format version (l2d_config.json, l2d_finetune.json) from which exports carry a digest


class ExportError(ValueError):
    """An export that cannot be loaded as it is: its files are not the ones it was written with, it lacks what
    checks them, or the base given is not the one it was made for."""


def unverified_allowed() -> bool:
    return os.environ.get(OPT_OUT) == "1"


WARNED: set[str] = set()


def warn_once(message: str) -> None:
    """An export is read more than once while it loads (its config first, then all of it): one warning each."""
    if message not in WARNED:
        WARNED.add(message)
        log.warning(message)


def refuse(message: str) -> None:
    """An error, unless the user opted out of export checks: then the same line as a warning."""
    if unverified_allowed():
        warn_once(f"{message} (loaded anyway: {OPT_OUT}=1)")
        return
    raise ExportError(f"{message}; set {OPT_OUT}=1 to load it unchecked")


def written_with_digest(record: dict) -> bool:
    """Whether an export's JSON record says it was written with a digest (before digests it had version 1 or none)."""
    return record.get("version", 1) >= DIGEST_VERSION


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_digest(directory: Path) -> None:
    """The sums of every file in `directory` but the card: the last file an export writes."""
    files = {path.name: sha256(path) for path in sorted(Path(directory).iterdir())
             if path.is_file() and path.name not in UNCOVERED}
    (Path(directory) / DIGEST_FILE).write_text(json.dumps({"format": FORMAT, "sha256": files}, indent=2) + "\n")


def verify_export(directory, has_digest: bool, only: str | None = None) -> None:
    """Each file the digest lists (or the one named `only`) is present with its recorded sum. `has_digest`: the
    export says it was written with one (a missing digest is then an error; one from before digests loads with a
    warning)."""
    directory = Path(directory)
    path = directory / DIGEST_FILE
    if not path.is_file():
        if has_digest:
            refuse(f"{path} is missing: the export cannot be checked against the files it was written with")
        else:
            warn_once(f"{directory} was written before exports carried a digest ({DIGEST_FILE}): its files are not "
                      "checked")
        return
    try:
        recorded = json.loads(path.read_text())["sha256"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        refuse(f"{path} is damaged ({type(error).__name__}: {error})")
        return
    for name, expected in recorded.items():
        if only is not None and name != only:
            continue
        file = directory / name
        if not file.is_file():
            refuse(f"{file} is missing (listed in {DIGEST_FILE})")
        elif (actual := sha256(file)) != expected:
            refuse(f"{file} is not the file this export was written with (sha256 {actual[:12]}…, {DIGEST_FILE} "
                   f"records {expected[:12]}…): edited, truncated or damaged since; restore it or export again")
