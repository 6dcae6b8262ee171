"""The features processor and the Redis feature store, with a real redis-server (no broker: the processor is
engine-agnostic and takes consumed records as plain data)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
import pandas as pd
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from services.features.month_gate import MonthClosePolicy, MonthGate
from services.features.parsing import fast_record
from services.features.processor import Processor
from shared.bus import KafkaRecord
from shared.data.generator import generate_frames
from shared.feature_store import FeatureStore
from shared.feature_store.layout import Layout
from shared.features import FEATURE_SETS, EligibilityRule, build_features
from shared.schemas import validate_record
from tests.helpers import ALL_FEATURE_SETS, Consumed, assert_store_matches_batch, consumed_records

pytestmark = pytest.mark.xdist_group("features")



RULE = EligibilityRule()
SETS = ALL_FEATURE_SETS


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return generate_frames(150, 3, seed=11).sales


class Harness:
    """A processor on a real Redis, collecting what it publishes."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.published: list[KafkaRecord] = []
        self.processor = Processor(self.client, self._publish, SETS, RULE, "sales.monthly")
        self.store = FeatureStore(client=self.client)

    async def _publish(self, records: Sequence[KafkaRecord]) -> None:
        self.published.extend(records)

    def feed(self, records: list[Consumed], partition: int = 0, batch: int = 2500):
        outcomes = []
        for start in range(0, len(records), batch):
            outcomes.append(asyncio.run(self.processor.handle({partition: records[start : start + batch]})))
        return outcomes

    def topic(self, name: str) -> list[dict]:
        return [orjson.loads(r.value) for r in self.published if r.topic == name]


def _features_only(store: FeatureStore) -> dict:
    return {fs.name: store.snapshot(fs.name, eligible_only=False).to_dict() for fs in SETS}


def test_streamed_features_equal_the_batch_builder(redis_url: str, sales: pd.DataFrame) -> None:
    h = Harness(redis_url)
    h.feed(consumed_records(sales))
    assert_store_matches_batch(h.store, sales)
    snap = h.store.snapshot("behaviour-v2")
    assert snap.attrs["as_of"] == f"{sales.year.max()}-{sales[sales.year == sales.year.max()].month.max():02d}"
    assert snap.attrs["rows"] == len(snap) == int(build_features(sales, "behaviour-v2", RULE)["eligible"].sum())
    assert h.store.dirty_count() == 0
    updated = h.topic("features.updated")
    assert {(u["shop_id"], u["feature_set"]) for u in updated} == {(s, fs.name) for s in snap.index for fs in SETS} | {
        (s, fs.name) for s in h.store.snapshot("seed-v1", eligible_only=False).index for fs in SETS
    }


def test_twice_shuffled_and_duplicated_gives_the_same_features(redis_url: str, sales: pd.DataFrame) -> None:
    sales = sales[sales.shop_id.isin(sales.shop_id.unique()[:60])]
    h = Harness(redis_url)
    h.feed(consumed_records(sales))
    once = _features_only(h.store)
    h.store.wipe()
    h.processor.epoch = -1
    rows = pd.concat([sales, sales.sample(frac=1.0, random_state=3), sales.iloc[::7]], ignore_index=True)
    h.feed(consumed_records(rows.sample(frac=1.0, random_state=4)))
    assert _features_only(h.store) == once


def test_a_correction_replaces_the_earlier_value(redis_url: str, sales: pd.DataFrame) -> None:
    h = Harness(redis_url)
    h.feed(consumed_records(sales))
    corrected = sales.iloc[:40].copy()
    corrected["sales_qty"] = corrected["sales_qty"] * 3 + 1
    h.feed(consumed_records(corrected, start=len(sales)))
    assert_store_matches_batch(h.store, pd.concat([sales, corrected], ignore_index=True))  # later rows win in batch too


def test_redelivered_offsets_change_nothing(redis_url: str, sales: pd.DataFrame) -> None:
    h = Harness(redis_url)
    records = consumed_records(sales)
    h.feed(records)
    before = h.store.dump()
    outcome = h.feed(records[1000:3000], batch=5000)[0]
    assert (outcome.applied, outcome.duplicates) == (0, 2000)
    assert h.store.dump() == before


def test_batching_does_not_change_a_single_byte(redis_url: str, sales: pd.DataFrame) -> None:
    h = Harness(redis_url)
    records = consumed_records(sales)
    h.feed(records, batch=5000)
    big = h.store.dump()
    h.store.wipe()
    h.processor.epoch = -1
    h.feed(records, batch=1000)
    assert h.store.dump() == big


def test_a_gap_asks_for_a_seek_and_a_different_log_for_a_restart(redis_url: str, sales: pd.DataFrame) -> None:
    h = Harness(redis_url)
    records = consumed_records(sales.iloc[:200])
    h.feed(records[:100])
    outcome = h.feed(records[150:])[0]  # offsets 150.. while 100 is next: the store is behind
    assert outcome.seeks == {0: 100} and outcome.applied == 0
    other = Consumed(99, b"x", b'{"shop_id": "x"}', 1)  # offset 99 again, but another record
    outcome = h.feed([other, *records[100:]])[0]
    assert outcome.seeks == {0: None}
    assert asyncio.run(h.processor.stored_offsets()) == {}


def test_a_hole_in_a_batch_applies_the_run_before_it_and_asks_for_the_rest(redis_url: str, sales: pd.DataFrame) -> None:
    h = Harness(redis_url)
    records = consumed_records(sales.iloc[:200])
    outcome = h.feed([*records[:80], *records[120:]])[0]  # offsets 80..119 missing in the middle of one batch
    assert outcome.seeks == {0: 80} and outcome.applied == 80
    assert asyncio.run(h.processor.stored_offsets())[0][0] == 79
    h.feed(records[80:])
    assert_store_matches_batch(h.store, sales.iloc[:200])


def test_poison_records_are_rejected_and_the_partition_moves_on(redis_url: str, sales: pd.DataFrame) -> None:
    h = Harness(redis_url)
    good = consumed_records(sales.iloc[:10])
    month13 = {"shop_id": "s", "product_id": "p", "year": 2020, "month": 13, "sales_qty": 1}
    bad = [
        Consumed(10, b"s", b"{not json", 1),
        Consumed(11, b"s", orjson.dumps(month13), 2),
        Consumed(12, b"s", orjson.dumps([1, 2]), 3),
        Consumed(13, b"s", b"", 4),
    ]
    more = consumed_records(sales.iloc[10:20], start=14)
    outcome = h.feed(good + bad + more)[0]
    assert outcome.rejected == 4 and outcome.seeks == {}
    assert asyncio.run(h.processor.stored_offsets())[0][0] == 23
    rejected = h.topic("sales.rejected")
    assert [r["source"] for r in rejected] == ["features"] * 4
    assert rejected[0]["errors"][0]["field"] == "value"
    assert rejected[1]["errors"] == [{"field": "month", "message": "Input should be less than or equal to 12"}]
    assert rejected[1]["record"]["month"] == 13


def test_a_rejected_record_read_again_is_rejected_once_per_worker(redis_url: str, sales: pd.DataFrame) -> None:
    """A seek back (hole, gap) re-reads applied records: their rejections are not published again; a new worker,
    knowing nothing of what was applied, publishes them again (at-least-once)."""
    h = Harness(redis_url)
    poison = Consumed(10, b"s", b"{not json", 1)
    records = [*consumed_records(sales.iloc[:10]), poison, *consumed_records(sales.iloc[10:20], 11)]
    h.feed(records)
    h.feed(records[5:])  # the consumer sought back to offset 5
    assert len(h.topic("sales.rejected")) == 1
    again = Harness(redis_url)
    again.feed(records[5:])
    assert len(again.topic("sales.rejected")) == 1


def test_a_dropped_partition_takes_its_rejections_with_it() -> None:
    good = Consumed(0, b"s", orjson.dumps({"shop_id": "s", "product_id": "p", "year": 2020, "month": 1,
                                           "sales_qty": 1}), 1)
    processor = Processor(None, None, SETS, RULE, "sales.monthly", layout=Layout(1))
    prepared = processor.prepare({0: [good, Consumed(1, b"s", b"{", 2)], 1: [Consumed(7, b"s", b"", 3)]})
    assert len(prepared.new_rejects({})) == 2
    assert len(prepared.new_rejects({0: 2})) == 1  # partition 0 applied through offset 1 already
    prepared.drop({1})
    assert len(prepared.new_rejects({})) == 1 and 1 not in prepared.rows


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _closer(h: Harness, **policy: float) -> Clock:
    clock = Clock()
    h.processor.month_gate = MonthGate(h.processor.state, MonthClosePolicy(**{"min_share": 0.8, "grace_seconds": 60.0,
                                                                   "quiet_seconds": 0.0, **policy}), clock)
    return clock


def test_months_close_only_on_a_settled_store(redis_url: str, sales: pd.DataFrame) -> None:
    """A backfill (the broker holds every record already) closes no month while it is applied, then every
    complete month at once, in order, with the retailers it really has."""
    h = Harness(redis_url)
    _closer(h)
    ordered = sales.sort_values(["year", "month"], kind="stable")
    records = consumed_records(ordered)
    h.processor.highwaters[0] = len(records)  # what the consumer sees on the broker
    h.feed(records[: len(records) // 2], batch=2000)
    assert h.topic("months.closed") == []  # half applied: nothing is closed mid-backfill
    h.feed(records[len(records) // 2 :], batch=2000)
    closed = h.topic("months.closed")
    months = [c["month"] for c in closed]
    periods = sorted(set(ordered.year.astype(str) + "-" + ordered.month.map("{:02d}".format)))
    assert len(months) > 20 and months == periods[periods.index(months[0]) : -1]  # the latest month stays open
    for event in closed:
        y, m = int(event["month"][:4]), int(event["month"][5:])
        assert event["retailers"] == sales[(sales.year == y) & (sales.month == m)].shop_id.nunique()
    assert h.store.latest_month() == periods[-1]


def test_a_half_filled_month_waits_for_its_retailers_or_the_grace(redis_url: str, sales: pd.DataFrame) -> None:
    h = Harness(redis_url)
    clock = _closer(h, quiet_seconds=5.0)
    first = sales[(sales.year == sales.year.min()) & (sales.month == 1)]
    second = sales[(sales.year == sales.year.min()) & (sales.month == 2)]
    few = second[second.shop_id.isin(second.shop_id.unique()[:3])]
    third = sales[(sales.year == sales.year.min()) & (sales.month == 3)].head(1)
    records = consumed_records(pd.concat([first, few, third]))
    h.processor.highwaters[0] = len(records)
    for part in (records[: len(first)], records[len(first) : -1], records[-1:]):  # month by month
        h.feed(part)
    assert h.topic("months.closed") == []  # settled, but not for the quiet period yet
    clock.now = 6.0
    asyncio.run(h.processor.flush_outbox())
    closed = [c["month"] for c in h.topic("months.closed")]
    month1 = f"{sales.year.min():04d}-01"
    assert closed == [month1]  # February has 3 retailers against January's many: it waits
    clock.now = 70.0  # the grace passed: February closes with what it has
    asyncio.run(h.processor.flush_outbox())
    assert h.topic("months.closed")[-1] == {"month": f"{sales.year.min():04d}-02", "retailers": 3}


def test_get_export_and_wipe(redis_url: str, sales: pd.DataFrame, tmp_path) -> None:
    h = Harness(redis_url)
    h.feed(consumed_records(sales))
    shop = sales.shop_id.iloc[0]
    row = h.store.get(shop, "seed-v1")
    assert row is not None and row["shop_id"] == shop and row["feature_set"] == "seed-v1"
    assert set(FEATURE_SETS["seed-v1"].columns) <= set(row) and isinstance(row["eligible"], bool)
    assert h.store.get("no-such-shop", "seed-v1") is None
    with pytest.raises(ValueError, match="feature_set: unknown"):
        h.store.get(shop, "nope")
    out = tmp_path / "f.csv"
    assert h.store.export_csv(out, "seed-v1") == sales.shop_id.nunique()
    frame = pd.read_csv(out)
    assert list(frame.columns[:3]) == ["shop_id", "eligible", "as_of"]
    h.store.wipe()
    assert h.store.get(shop, "seed-v1") is None and h.store.snapshot("seed-v1").empty
    assert h.client.keys("ss:0:*") == []
    stale = h.feed(consumed_records(sales.iloc[:10]))[0]  # the processor still on the old epoch is fenced
    assert stale.reseek_all and stale.applied == 0


def test_an_older_revision_never_overwrites_a_newer_one(redis_url: str, sales: pd.DataFrame) -> None:
    h = Harness(redis_url)
    h.feed(consumed_records(sales))
    shop = sales.shop_id.iloc[0]
    state, epoch = h.processor.state, h.processor.epoch
    before = h.store.get(shop, "seed-v1")
    stale = [(shop, 1, ["a", 99 * 12])]  # revision 1, as-of 1999-01
    assert state.write(epoch, stale) == 0
    assert h.store.get(shop, "seed-v1") == before and before["as_of"] != "1999-01"


ids = st.one_of(st.text(min_size=0, max_size=70), st.integers(-5, 10**70), st.booleans(), st.none(), st.floats())
numbers = st.one_of(st.integers(-(10**400), 10**400), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                    st.text(max_size=3), st.none())


@settings(max_examples=400, deadline=None)
@given(shop=ids, product=ids, year=numbers, month=numbers, qty=numbers, drop=st.sampled_from(["", "year", "shop_id"]))
def test_the_fast_check_agrees_with_the_contract(shop, product, year, month, qty, drop) -> None:
    raw = {"shop_id": shop, "product_id": product, "year": year, "month": month, "sales_qty": qty}
    raw.pop(drop, None)
    fast = fast_record(raw)
    if fast is None:
        return  # the contract decides (covered by the poison test)
    sale, errors = validate_record(raw)
    assert sale is not None, errors
    assert fast == (sale.shop_id, sale.product_id, sale.period, repr(sale.sales_qty + 0.0))


def test_cli_get_and_export(redis_url: str, sales: pd.DataFrame, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from services.cli.features import app
    from shared.config import get_settings

    h = Harness(redis_url)
    h.feed(consumed_records(sales[sales.shop_id.isin(sales.shop_id.unique()[:20])]))
    monkeypatch.setenv("STABLESEG_REDIS_URL", redis_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        shop = sales.shop_id.iloc[0]
        result = runner.invoke(app, ["get", shop, "--feature-set", "seed-v1", "--json"])
        assert result.exit_code == 0, result.output
        assert orjson.loads(result.stdout) == h.store.get(shop, "seed-v1")
        missing = runner.invoke(app, ["get", "nope"])
        assert missing.exit_code == 1 and "not in the feature store" in missing.output
        unknown = runner.invoke(app, ["get", shop, "--feature-set", "v9"])
        assert unknown.exit_code == 1 and "--feature-set: unknown feature set 'v9'" in unknown.output
        out = tmp_path / "features.csv"
        assert runner.invoke(app, ["export", "--out", str(out)]).exit_code == 0
        exported = pd.read_csv(out, index_col="shop_id")
        assert list(exported.columns) == ["eligible", "as_of", *FEATURE_SETS[get_settings().feature_set].columns]
        assert len(exported) == 20
    finally:
        get_settings.cache_clear()


def test_a_store_in_another_layout_is_refused_until_rebuilt(redis_url: str, sales: pd.DataFrame) -> None:
    from shared.feature_store import LayoutError

    client = redis.Redis.from_url(redis_url)
    client.set("ss:epoch", 0)
    client.sadd("ss:0:shops", "S000001")  # the previous layout: per-feature-set hashes, a shops set
    client.hset("ss:0:f:behaviour-v3:S000001", mapping={"eligible": "1"})
    h = Harness(redis_url)
    with pytest.raises(LayoutError, match=r"previous .* layout; run `stableseg features rebuild`"):
        h.store.get("S000001")
    with pytest.raises(LayoutError):
        h.feed(consumed_records(sales.iloc[:10]))
    assert h.store.wipe() == 1  # what `features rebuild` does first: the old keys go, the layout is recorded
    assert client.keys("ss:0:*") == [] and client.get("ss:layout") == b"compact-v2:16"
    h.processor.epoch = -1
    h.feed(consumed_records(sales))
    assert_store_matches_batch(h.store, sales)
    other = FeatureStore(client=client, cluster=False, groups=8)
    with pytest.raises(LayoutError, match=r"feature_store_slot_groups: .* 'compact-v2:16', these settings use "):
        other.shop_count()


def test_a_retailer_hash_stays_compact(redis_url: str, sales: pd.DataFrame) -> None:
    h = Harness(redis_url)
    h.feed(consumed_records(sales))
    keys = h.client.keys("ss:*:r:*")
    assert len(keys) == sales.shop_id.nunique()
    assert {h.client.object("encoding", k) for k in keys} == {b"ziplist"}  # Redis 6.2's name for the compact form
    mean = sum(h.client.memory_usage(k) for k in keys) / len(keys)
    assert mean < 1600, mean  # 3 years of the generator's data; 5 years: bench/bench_store_memory.py
