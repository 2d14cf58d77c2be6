"""Faults: the spec syntax, the pure per-step plan, and each fault as a client sees it over loopback."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from acts.core.errors import InputError
from acts.exchange.faults import Fault, FaultKind, Faults, parse_fault
from acts.exchange.server import LocalExchange
from tests.exchange.conftest import SPEED, SYMBOLS, breaks, combined_url, make_feed, payloads, read_frames

# --- syntax -------------------------------------------------------------------------------

PARSED = [
    ("drop", Fault(FaultKind.DROP, mode="close")),
    ("drop@30s", Fault(FaultKind.DROP, 30.0, mode="close")),
    ("drop@30:reset", Fault(FaultKind.DROP, 30.0, mode="reset")),
    ("skip_ids@10s", Fault(FaultKind.SKIP, 10.0)),
    ("skip@10:BTCUSDT:3", Fault(FaultKind.SKIP, 10.0, "BTCUSDT", 3)),
    ("skip:ethusdt", Fault(FaultKind.SKIP, symbol="ETHUSDT")),
    ("skip:4", Fault(FaultKind.SKIP, count=4)),
    ("stall@5s:3s", Fault(FaultKind.STALL, 5.0, seconds=3.0)),
    ("stall:2.5", Fault(FaultKind.STALL, seconds=2.5)),
    ("stall@500ms:1m:burst", Fault(FaultKind.STALL, 0.5, seconds=60.0, mode="burst")),
    ("stall", Fault(FaultKind.STALL, seconds=5.0)),
    ("duplicate:3", Fault(FaultKind.DUPLICATE, count=3)),
    ("dup:BTCUSDT", Fault(FaultKind.DUPLICATE, symbol="BTCUSDT")),
    ("reorder", Fault(FaultKind.REORDER)),
    ("malformed@1m", Fault(FaultKind.MALFORMED, 60.0)),
    ("unknown:2", Fault(FaultKind.UNKNOWN, count=2)),
    ("rest@5:500:2", Fault(FaultKind.REST, 5.0, mode="500", count=2)),
    ("rest:503", Fault(FaultKind.REST, mode="503")),
    ("rest:timeout", Fault(FaultKind.REST, mode="timeout")),
    ("rest:418:1", Fault(FaultKind.REST, mode="418")),
    ("restart@20:-500", Fault(FaultKind.RESTART, 20.0, delta=-500)),
    ("restart:+5000", Fault(FaultKind.RESTART, delta=5000)),
    ("restart", Fault(FaultKind.RESTART)),
]


@pytest.mark.parametrize(("spec", "expected"), PARSED)
def test_parse(spec: str, expected: Fault) -> None:
    assert parse_fault(spec) == replace(expected, spec=spec)


@pytest.mark.parametrize(("spec", "message"), [
    ("explode@3", "unknown kind 'explode'"),
    ("drop@soon", "is not a duration"),
    ("stall:forever", "is not a duration"),
    ("skip:BTCUSDT:ETHUSDT", "optional symbol and count"),
    ("skip:BTCUSDT:0", "must be a whole number >= 1"),
    ("rest", "say how REST fails"),
    ("rest:404", "say how REST fails"),
    ("drop:gently", "drop takes one of close | reset"),
    ("restart:lots", "restart takes an id jump"),
    ("malformed:1:2", "optional count"),
])
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_fault(spec)


def test_faults_on_symbols_that_are_not_served_are_refused() -> None:
    with pytest.raises(InputError, match="XRPUSDT is not served; use one of BTCUSDT, ETHUSDT"):
        Faults(SYMBOLS).inject("skip:XRPUSDT", 0.0)
    with pytest.raises(InputError, match="XRPUSDT is not served"):
        LocalExchange(make_feed(), schedule=["dup@5:XRPUSDT"])  # before anything is bound


# --- the plan, step by step (pure) --------------------------------------------------------


def _steps(n: int, first: int = 100) -> list[list[dict[str, Any]]]:
    """n steps of two symbols, ids chained per symbol, 2 ids per diff."""
    out = []
    for i in range(n):
        out.append([{"e": "depthUpdate", "s": s, "U": first + 2 * i + off, "u": first + 2 * i + off + 1}
                    for s, off in (("BTCUSDT", 0), ("ETHUSDT", 10_000))])
    return out


def _run(specs: list[str], steps: int = 4) -> list[list[tuple[str, int]]]:
    faults = Faults(SYMBOLS)
    for spec in specs:
        faults.inject(spec, 0.0)
    return [[(m["s"][:3], m["U"]) for m in faults.plan(step, 0.0).messages] for step in _steps(steps)]


PLANS = [
    ([], [[("BTC", 100), ("ETH", 10100)], [("BTC", 102), ("ETH", 10102)]]),
    (["skip:BTCUSDT:1"], [[("ETH", 10100)], [("BTC", 102), ("ETH", 10102)]]),
    (["skip"], [[], [("BTC", 102), ("ETH", 10102)]]),
    (["duplicate:ETHUSDT"], [[("BTC", 100), ("ETH", 10100), ("ETH", 10100)], [("BTC", 102), ("ETH", 10102)]]),
    (["reorder:BTCUSDT"], [[("ETH", 10100)], [("BTC", 102), ("BTC", 100), ("ETH", 10102)]]),
    (["restart:+1000"], [[("BTC", 1100), ("ETH", 11100)], [("BTC", 1102), ("ETH", 11102)]]),
    (["restart"], [[("BTC", 1), ("ETH", 1)], [("BTC", 3), ("ETH", 3)]]),
    (["restart:-99999999"], [[("BTC", 1), ("ETH", 1)], [("BTC", 3), ("ETH", 3)]]),
]


@pytest.mark.parametrize(("specs", "expected"), PLANS)
def test_plan(specs: list[str], expected: list[list[tuple[str, int]]]) -> None:
    assert _run(specs, len(expected)) == expected


def test_stall_drop_and_extras_in_the_plan() -> None:
    faults = Faults(SYMBOLS)
    steps = _steps(6)
    faults.inject("stall:1s", 0.0)
    faults.inject("malformed", 0.0)
    assert faults.plan(steps[0], 0.0).stalled
    plan = faults.plan(steps[1], 0.5)
    assert plan.stalled and not plan.burst and not plan.malformed  # extras wait for the stall to end
    plan = faults.plan(steps[2], 1.0)
    assert not plan.stalled and plan.malformed and len(plan.messages) == 2
    faults.inject("drop:reset", 1.0)
    faults.inject("unknown@2s", 1.0)
    assert faults.plan(steps[3], 1.1).drop == "reset"
    assert not faults.plan(steps[4], 2.9).unknown
    assert faults.plan(steps[5], 3.0).unknown and not faults.pending
    assert [f.kind for f in faults.fired] == ["stall", "malformed", "drop", "unknown"]


def test_restart_renumbers_snapshots_like_diffs() -> None:
    faults = Faults(SYMBOLS)
    faults.inject("restart:+50", 0.0)
    assert faults.renumber_snapshot("BTCUSDT", {"lastUpdateId": 99}) == {"lastUpdateId": 99}  # not yet
    faults.plan(_steps(1)[0], 0.0)
    assert faults.renumber_snapshot("BTCUSDT", {"lastUpdateId": 101})["lastUpdateId"] == 151
    assert faults.take_rest_failure() is None
    faults.inject("rest:500:2", 0.0)
    assert [faults.take_rest_failure() for _ in range(3)] == ["500", "500", None]


# --- observed by a client -----------------------------------------------------------------


async def _open(http: aiohttp.ClientSession, ex: LocalExchange) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(combined_url(ex))
    assert len(await read_frames(ws, 4)) == 4  # streaming
    return ws


async def _around(http: aiohttp.ClientSession, ex: LocalExchange, spec: str, after: int = 60) -> list[Any]:
    """Frames of a combined stream: 10 before injecting ``spec``, ``after`` after it."""
    ws = await http.ws_connect(combined_url(ex))
    frames = await read_frames(ws, 10)
    ex.inject(spec)
    frames += await read_frames(ws, after)
    await ws.close()
    return frames


async def test_drop_closes_every_connection(http: aiohttp.ClientSession, ex: LocalExchange) -> None:
    first, second = await _open(http, ex), await _open(http, ex)
    ex.inject("drop")
    for ws in (first, second):
        await read_frames(ws, 10_000)
        assert ws.closed and ws.close_code == 1001
    again = await _open(http, ex)  # the exchange itself is fine
    await again.close()


async def test_drop_reset_cuts_tcp_without_a_close_frame(http: aiohttp.ClientSession, ex: LocalExchange) -> None:
    ws = await _open(http, ex)
    ex.inject("drop:reset")
    frames = await read_frames(ws, 10_000)
    assert all(isinstance(f, dict) for f in frames)
    assert ws.close_code != 1001


async def test_scheduled_drop_fires_after_its_delay(http: aiohttp.ClientSession, ex: LocalExchange) -> None:
    # When it fires is the pure plan's business (test_a_scheduled_fault_waits_for_its_time); here: it is
    # scheduled, not armed, and once due it closes the connection like a drop.
    ws = await _open(http, ex)
    fault = ex.inject("drop@300ms")
    assert ex.faults.fired == [] and ex.faults.pending  # no await since: nothing can have fired
    await read_frames(ws, 10_000)  # bound only: stops at the close
    assert ex.faults.fired == [fault] and ws.close_code == 1001


def test_a_scheduled_fault_waits_for_its_time() -> None:
    faults = Faults(SYMBOLS)
    steps = _steps(3)
    faults.inject("drop@300ms", 10.0)
    assert faults.plan(steps[0], 10.299).drop is None and faults.fired == []
    assert faults.plan(steps[1], 10.3).drop == "close" and faults.fired == [parse_fault("drop@300ms")]
    assert faults.plan(steps[2], 10.4).drop is None and not faults.pending


def test_a_burst_stall_holds_every_message_then_lets_go() -> None:
    faults = Faults(SYMBOLS)
    steps = _steps(3)
    faults.inject("stall:0.4s:burst", 0.0)
    held = [faults.plan(steps[0], 0.0), faults.plan(steps[1], 0.399)]
    assert all(p.stalled and p.burst and len(p.messages) == 2 for p in held)  # kept for the burst, not lost
    after = faults.plan(steps[2], 0.4)
    assert not after.stalled and len(after.messages) == 2


async def test_stall_keeps_the_socket_and_loses_the_diffs(http: aiohttp.ClientSession, ex: LocalExchange) -> None:
    ws = await _open(http, ex)
    before = payloads(await read_frames(ws, 10), "BTCUSDT")
    stall = ex.inject("stall:0.5s")
    after = payloads(await read_frames(ws, 40), "BTCUSDT")  # bound only: 5 s without a frame ends it
    assert ex.faults.fired == [stall] and not ws.closed
    assert len(breaks(before + after)) == 1  # what the market did meanwhile is lost: one gap
    await ws.close()


async def test_stall_burst_holds_then_sends_everything(http: aiohttp.ClientSession, ex: LocalExchange) -> None:
    ws = await _open(http, ex)
    frames = await read_frames(ws, 10)
    stall = ex.inject("stall:0.4s:burst")
    frames += await read_frames(ws, 400)
    assert ex.faults.fired == [stall] and not ws.closed
    btc, eth = payloads(frames, "BTCUSDT"), payloads(frames, "ETHUSDT")
    assert breaks(btc) == breaks(eth) == []  # held, not lost: the diffs of the stall came in the burst
    await ws.close()


@pytest.mark.parametrize("spec", ["skip:BTCUSDT:3", "skip_ids@0.05s:BTCUSDT:3"])
async def test_skip_loses_exactly_n_diffs_of_one_symbol(http: aiohttp.ClientSession, spec: str) -> None:
    async with LocalExchange(make_feed(), speed=SPEED) as ex:
        frames = await _around(http, ex, spec, 100)
    btc, eth = payloads(frames, "BTCUSDT"), payloads(frames, "ETHUSDT")
    assert breaks(eth) == []
    ((expected, got),) = breaks(btc)
    reference = make_feed()  # same seed, same market: count the diffs that were not sent
    lost: list[dict[str, Any]] = []
    for _ in range(100_000):
        lost += [m for m in reference.step()
                 if m["s"] == "BTCUSDT" and m.get("e") == "depthUpdate" and expected <= m["U"] < got]
        if reference.generator.streams["BTCUSDT"].last_update_id >= got:
            break
    assert len(lost) == 3 and lost[0]["U"] == expected


async def test_duplicate_sends_the_next_diffs_twice(http: aiohttp.ClientSession, ex: LocalExchange) -> None:
    eth = payloads(await _around(http, ex, "duplicate:ETHUSDT:2"), "ETHUSDT")
    twins = [a for a, b in zip(eth, eth[1:], strict=False) if a == b]
    assert len(twins) == 2
    assert breaks([m for i, m in enumerate(eth) if i == 0 or m != eth[i - 1]]) == []


async def test_reorder_swaps_two_consecutive_diffs(http: aiohttp.ClientSession, ex: LocalExchange) -> None:
    btc = payloads(await _around(http, ex, "reorder:BTCUSDT"), "BTCUSDT")
    backwards = [i for i in range(1, len(btc)) if btc[i]["U"] < btc[i - 1]["U"]]
    assert len(backwards) == 1
    i = backwards[0]
    assert btc[i]["U"] == btc[i - 2]["u"] + 1 and btc[i - 1]["U"] == btc[i]["u"] + 1  # k+1 came before k


async def test_malformed_and_unknown_frames(http: aiohttp.ClientSession, ex: LocalExchange) -> None:
    ws = await _open(http, ex)
    raw = await http.ws_connect(f"{ex.stream_url}ws/btcusdt@depth@100ms")
    ex.inject("malformed")
    ex.inject("unknown")
    for conn, wrapped in ((ws, True), (raw, False)):
        frames = await read_frames(conn, 60)
        assert sum(isinstance(f, str) for f in frames) == 1  # not JSON
        (odd,) = [f for f in frames if isinstance(f, dict) and f.get("data", f).get("e") == "unknownEvent"]
        assert ("stream" in odd) is wrapped
        assert breaks(payloads(frames, "BTCUSDT")) == []  # the stream itself goes on
        await conn.close()


@pytest.mark.parametrize(("spec", "status"), [("rest:500:2", 500), ("rest:503", 503), ("rest:429", 429),
                                              ("rest:418", 418)])
async def test_rest_failures_are_counted(http: aiohttp.ClientSession, ex: LocalExchange, spec: str,
                                         status: int) -> None:
    ex.inject(spec)
    url = f"{ex.rest_url}/v3/depth?symbol=BTCUSDT&limit=5"
    statuses = []
    for _ in range(parse_fault(spec).count + 1):
        async with http.get(url) as resp:
            statuses.append(resp.status)
            body = await resp.json()
            if resp.status in (429, 418):
                assert resp.headers["Retry-After"] == "1"
            assert "X-MBX-USED-WEIGHT-1M" in resp.headers
    assert statuses == [status] * parse_fault(spec).count + [200]
    assert "lastUpdateId" in body


async def test_rest_timeout_hangs_until_the_client_gives_up(http: aiohttp.ClientSession,
                                                            ex: LocalExchange) -> None:
    ex.inject("rest:timeout")
    url = f"{ex.rest_url}/v3/depth?symbol=BTCUSDT&limit=5"
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=0.3)):
            pass
    async with http.get(url) as resp:
        assert resp.status == 200


async def test_hung_request_is_released_when_the_exchange_stops(http: aiohttp.ClientSession) -> None:
    # rest_hang_s is an hour: only the stop can release the request, so an answer at all is the proof.
    ex = LocalExchange(make_feed(), speed=SPEED)
    await ex.start()
    try:
        ex.inject("rest:timeout")
        request = asyncio.ensure_future(http.get(f"{ex.rest_url}/v3/depth?symbol=BTCUSDT"))
        for _ in range(1000):  # bounded poll: until the request has taken the fault and hangs
            if not ex.faults.pending:
                break
            await asyncio.sleep(0.005)
        assert not ex.faults.pending and not request.done()
    finally:
        await asyncio.wait_for(ex.stop(), 30)  # a bound: well under rest_hang_s
    response = await asyncio.wait_for(request, 30)
    assert response.status == 503
    response.release()


@pytest.mark.parametrize(("spec", "jump"), [("restart:+100000", 100_000), ("restart", None)])
async def test_restart_jumps_ids_in_diffs_and_snapshots(http: aiohttp.ClientSession, ex: LocalExchange,
                                                        spec: str, jump: int | None) -> None:
    btc = payloads(await _around(http, ex, spec), "BTCUSDT")
    async with http.get(f"{ex.rest_url}/v3/depth?symbol=BTCUSDT&limit=5") as resp:
        snapshot = await resp.json()
    ((expected, got),) = breaks(btc)
    if jump is None:
        assert got == 1
    else:
        assert got - expected >= jump
    assert snapshot["lastUpdateId"] < got + 10_000  # snapshots are on the new numbering too


async def test_faults_scheduled_at_start(http: aiohttp.ClientSession) -> None:
    async with LocalExchange(make_feed(), speed=SPEED, schedule=["unknown@0.2s", "rest:500"]) as ex:
        async with http.get(f"{ex.rest_url}/v3/depth?symbol=ETHUSDT") as resp:
            assert resp.status == 500
        ws = await http.ws_connect(combined_url(ex))
        frames = await read_frames(ws, 400)
        await ws.close()
        assert any(f.get("data", {}).get("e") == "unknownEvent" for f in frames)
        assert [f.kind for f in ex.faults.fired] == ["rest", "unknown"]


async def test_keep_sent_records_the_exact_texts(http: aiohttp.ClientSession, ex: LocalExchange) -> None:
    ex.keep_sent = True
    ws = await http.ws_connect(f"{ex.stream_url}ws/ethusdt@depth@100ms")
    texts = []
    for _ in range(20):
        msg = await asyncio.wait_for(ws.receive(), 5)
        texts.append(msg.data)
    await ws.close()
    start = ex.sent.index(texts[0])
    assert [t for t in ex.sent[start:] if '"s":"ETHUSDT"' in t][:20] == texts
    assert json.loads(texts[0])["s"] == "ETHUSDT"
