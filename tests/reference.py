"""A naive reference book, written from Binance's rules with Decimal/Fraction -- no code shared with ACTS."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction


class ReferenceBook:
    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def load(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        self.bids, self.asks = {}, {}
        self.apply(bids, asks)

    def apply(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                if Decimal(qty) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(qty)

    def top(self, side: str, n: int) -> list[tuple[Decimal, Decimal]]:
        book = self.bids if side == "bids" else self.asks
        return sorted(book.items(), reverse=side == "bids")[:n]

    # Features, exactly, then rounded once to float.
    def mid(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return float((Fraction(max(self.bids)) + Fraction(min(self.asks))) / 2)

    def bias(self, n: int) -> float | None:
        b = sum((Fraction(q) for _, q in self.top("bids", n)), Fraction(0))
        a = sum((Fraction(q) for _, q in self.top("asks", n)), Fraction(0))
        return None if b + a == 0 else float((b - a) / (b + a))

    def amount(self, side: str, n: int) -> float | None:
        levels = self.top(side, n)
        return float(sum((Fraction(q) for _, q in levels), Fraction(0))) if levels else None

    def microprice(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        (bp, bq), (ap, aq) = self.top("bids", 1)[0], self.top("asks", 1)[0]
        return float((Fraction(bp) * Fraction(aq) + Fraction(ap) * Fraction(bq)) / (Fraction(bq) + Fraction(aq)))

    def depth(self, bps: int) -> float | None:
        if not self.bids or not self.asks:
            return None
        mid = (Fraction(max(self.bids)) + Fraction(min(self.asks))) / 2
        band = mid * Fraction(bps, 10_000)
        near = [(p, q) for p, q in self.bids.items() if mid - Fraction(p) <= band]
        near += [(p, q) for p, q in self.asks.items() if Fraction(p) - mid <= band]
        return float(sum((Fraction(p) * Fraction(q) for p, q in near), Fraction(0)))


class ReferenceRows:
    """Rows per interval by the validity rule, written from its statement alone (no ACTS code).

    Binance's procedure: diffs wait for a snapshot; after the snapshot (L) diffs with u <= L are
    dropped and the next one must have U <= L + 1 <= u; then U == previous u + 1 each time, and
    u <= previous u changes nothing. The row for interval I is the book after the last diff whose E
    lies in I; it is valid only if the book was known then AND the first diff with E past I does not
    break the chain. A crossed book is unknown until the next snapshot.

    ``futures=True``, Binance's USD-M procedure: after the snapshot diffs with u < L are dropped and the
    next one must have U <= L <= u; then each diff's pu must equal the previous u.
    """

    def __init__(self, interval_ms: int = 60_000, futures: bool = False) -> None:
        self.interval_ms = interval_ms
        self.futures = futures
        self.book = ReferenceBook()
        self.mode = "none"  # none | bridging | live
        self.position = 0
        self.waiting: list = []  # diffs seen while no book is known
        self.last_diff_time: int | None = None
        self.open: int | None = None
        self.cut: tuple[int, bool, int | None, float | None] | None = None  # the open row a restart cut off
        #: (interval start, valid, E of the last diff applied, mid when valid)
        self.rows: list[tuple[int, bool, int | None, float | None]] = []

    def feed(self, event: object) -> None:
        time = getattr(event, "event_time_ms", None)
        if time is None:
            if hasattr(event, "last_update_id"):
                self._snapshot(event)
            elif getattr(event, "kind", None) == 6:  # RESTART: a new recorder process, which knew nothing
                if self.open is not None:
                    self.cut = (self.open, False, self.last_diff_time, None)
                self._forget()
                self.position, self.waiting, self.last_diff_time = 0, [], None
            return  # other markers change nothing
        start = time - time % self.interval_ms
        if self.open is None:
            self.open = start
        if start <= self.open:
            self.cut = None  # the interval goes on after the restart, as the new process saw it
            self._diff(event)
            return
        known = self.mode != "none" and self.cut is None
        mid = self.book.mid() if known else None
        last = self.last_diff_time if self.cut is None else self.cut[2]
        broke = self._diff(event) == "broke"
        valid = known and not broke
        for t in range(self.open, start, self.interval_ms):
            self.rows.append((t, valid, last, mid if valid else None))
        self.open, self.cut = start, None

    def _crossed(self) -> bool:
        return bool(self.book.bids and self.book.asks and max(self.book.bids) >= min(self.book.asks))

    def _forget(self) -> None:
        self.mode = "none"
        self.book = ReferenceBook()

    def _diff(self, event: object) -> str:
        first, final = event.first_update_id, event.final_update_id  # type: ignore[attr-defined]
        if self.mode == "none":
            self.waiting.append(event)
            return "waiting"
        bridging = self.mode == "bridging"
        if final < self.position or (final == self.position and not (self.futures and bridging)):
            return "stale"
        if self.futures:
            fits = first <= self.position if bridging else event.prev_final_update_id == self.position  # type: ignore[attr-defined]
        else:
            fits = first <= self.position + 1 if bridging else first == self.position + 1
        if not fits:
            self._forget()
            self.waiting = [event]
            return "broke"
        self.book.apply(list(event.bids), list(event.asks))  # type: ignore[attr-defined]
        self.position, self.mode = final, "live"
        self.last_diff_time = event.event_time_ms  # type: ignore[attr-defined]
        if self._crossed():
            self._forget()
            return "crossed"
        return "applied"

    def _snapshot(self, snapshot: object) -> None:
        if self.mode == "live":
            return  # a checkpoint
        self.book = ReferenceBook()
        self.book.load(list(snapshot.bids), list(snapshot.asks))  # type: ignore[attr-defined]
        self.position, self.mode = snapshot.last_update_id, "bridging"  # type: ignore[attr-defined]
        if self._crossed():
            self._forget()
            return
        waiting, self.waiting = self.waiting, []
        for index, diff in enumerate(waiting):
            if self._diff(diff) in ("broke", "crossed"):
                self.waiting += waiting[index + 1 :]
                return
