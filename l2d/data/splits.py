"""Fixed held-out slices of local training files.

Training excludes them and evaluation scores them, so both sides import the slice from here.
"""

GSM8K_HELDOUT_SIZE = 500


def split_heldout(records: list, size: int) -> tuple[list, list]:
    """Return (train, heldout): the last `size` records are held out, in file order."""
    if not 0 < size < len(records):
        raise ValueError(f"held-out size must be between 1 and {len(records) - 1} for {len(records)} records, "
                         f"got {size}")
    return records[:-size], records[-size:]
