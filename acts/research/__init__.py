"""Research on top of the features tables of ``acts.api``: does a feature predict the mid (``study``),
and pictures of features over time (``plot``, needs the ``plot`` extra: matplotlib).

Pure functions over pyarrow tables; the CLI (``acts study``, ``acts plot``) fetches the table and
writes the files. Walkthrough: docs/RESEARCH.md.
"""

from __future__ import annotations

__all__ = ["study", "plot"]
