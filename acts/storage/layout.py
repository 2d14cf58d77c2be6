"""Where everything lives under a data dir: every folder named once, here.

::

    DATA/
      journal/                  open and unfinished journals (``storage.journal``)
        rolled/                 journals rolled into segments, kept ``--keep-journals`` days
        unverified/             journals whose segments did not read back as written: never deleted
      segments/symbol=S/date=D/ Parquet segments of spot (``storage.segments``)
        market=usdm/symbol=S/date=D/  ...of USD-M futures: a symbol name of both markets never mixes
      quarantine/<name>.jsonl   messages that cannot be stored (``storage.quarantine``)
      spool/                    minute entries waiting for MongoDB
      entries.sqlite            minute entries without MongoDB
      logs/                     ``acts.log`` and ``data-<asset>.log``

``DataLayout`` works on local paths and on object-storage paths alike (``PurePosixPath``): it only joins names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Generic, TypeVar

from acts.core.markets import Market

__all__ = ["DataLayout", "SYMBOL_PREFIX", "DATE_PREFIX", "MARKET_PREFIX"]

#: Segment folders are named ``symbol=BTCUSDT`` and, inside, ``date=2024-05-01`` (Hive-style partitions).
SYMBOL_PREFIX = "symbol="
DATE_PREFIX = "date="
#: Futures segments live under ``segments/market=usdm/``; spot keeps the folders it had before markets.
MARKET_PREFIX = "market="

PathT = TypeVar("PathT", bound=PurePath)


@dataclass(frozen=True, slots=True)
class DataLayout(Generic[PathT]):
    """The folders and files of the data dir ``root``."""

    root: PathT

    @property
    def journal(self) -> PathT:
        return self.root / "journal"

    @property
    def rolled(self) -> PathT:
        return self.journal / "rolled"

    @property
    def unverified(self) -> PathT:
        return self.journal / "unverified"

    @property
    def segments(self) -> PathT:
        return self.root / "segments"

    def market_segments(self, market: Market = Market.SPOT) -> PathT:
        """The folder of one market's ``symbol=`` folders."""
        return self.segments if market is Market.SPOT else self.segments / f"{MARKET_PREFIX}{market}"

    def symbol_dir(self, symbol: str, market: Market = Market.SPOT) -> PathT:
        return self.market_segments(market) / f"{SYMBOL_PREFIX}{symbol}"

    def segment_dir(self, symbol: str, day: str, market: Market = Market.SPOT) -> PathT:
        """The folder of ``symbol``'s segments of ``day`` (``YYYY-MM-DD``, UTC) in ``market``."""
        return self.symbol_dir(symbol, market) / f"{DATE_PREFIX}{day}"

    @property
    def quarantine(self) -> PathT:
        return self.root / "quarantine"

    @property
    def spool(self) -> PathT:
        return self.root / "spool"

    @property
    def spool_db(self) -> PathT:
        """Minute entries MongoDB refused, until it takes them."""
        return self.spool / "entries-spool.sqlite"

    @property
    def entries_db(self) -> PathT:
        """Minute entries when no MongoDB is configured."""
        return self.root / "entries.sqlite"

    @property
    def logs(self) -> PathT:
        return self.root / "logs"
