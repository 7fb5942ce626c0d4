"""Condition operators, correlation with the trigger event, and time in the visitor's zone."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest

from footprint.engine.inputs import EventInput, ProfileView, lookup
from footprint.engine.matching import compare, correlated, matches_audience, matches_properties
from footprint.engine.state import TriggerSnapshot
from footprint.engine.timing import in_quiet_hours, next_local_time, quiet_hours_end, visitor_zone
from footprint.models.consent import OPT_OUT
from footprint.models.events import TrackedEvent
from footprint.models.journey import AttributeCondition, PropertyCondition, QuietHours
from footprint.models.profile import Profile, WebPushSubscription
from tests.unit.engine.builders import T0, profile

HCM = visitor_zone("Asia/Ho_Chi_Minh", "UTC")


class TestCompare:
    @pytest.mark.parametrize(
        ("actual", "op", "expected", "result"),
        [
            (15, "eq", 15, True),
            (15, "eq", 16, False),
            ("15", "eq", 15, True),  # browsers send numbers as strings
            (15, "eq", "15", True),
            ("vay-nu-he", "eq", "vay-nu-he", True),
            ("vay-nu-he", "ne", "ao-so-mi", True),
            (15, "ne", 15, False),
            (16, "gt", 15, True),
            (15, "gt", 15, False),
            (15, "gte", 15, True),
            ("15.5", "gte", 15, True),
            (14, "lt", 15, True),
            (15, "lte", 15, True),
            (16, "lte", 15, False),
            ("Hà Nội", "in", ["Hà Nội", "Đà Nẵng"], True),
            ("Huế", "in", ["Hà Nội", "Đà Nẵng"], False),
            ("2", "in", [1, 2, 3], True),
            ("Váy nữ phong cách hè", "contains", "phong cách", True),
            ("Váy nữ phong cách hè", "contains", "VÁY", True),  # case-insensitive text
            (["vip", "lead"], "contains", "vip", True),
            (["vip", "lead"], "contains", "new", False),
            ({"a": 1}, "contains", "a", True),
            (42, "contains", "4", False),
            ("abc", "gt", 5, False),  # not comparable: no match, no crash
            ([1], "gt", 0, False),
            ("2025-06-02", "gte", "2025-06-01", True),
            (datetime(2025, 6, 2, tzinfo=UTC), "gte", "2025-06-01", True),
        ],
    )
    def test_operators(self, actual: Any, op: Any, expected: Any, result: bool) -> None:
        assert compare(True, actual, op, expected) is result

    @pytest.mark.parametrize(
        ("op", "expected", "result"),
        [("eq", 1, False), ("ne", 1, True), ("gt", 1, False), ("in", [1], False), ("contains", "x", False)],
    )
    def test_a_missing_value_only_satisfies_ne(self, op: Any, expected: Any, result: bool) -> None:
        assert compare(False, None, op, expected) is result

    def test_exists(self) -> None:
        assert compare(True, 0, "exists", None) is True
        assert compare(False, None, "exists", True) is False
        assert compare(False, None, "exists", False) is True
        assert compare(True, "x", "exists", False) is False


class TestLookup:
    def test_dotted_paths_and_exact_keys(self) -> None:
        data = {"product": {"id": "vay-nu-he", "price": 350_000}, "utm.source": "zalo"}
        assert lookup(data, "product.id") == (True, "vay-nu-he")
        assert lookup(data, "utm.source") == (True, "zalo")
        assert lookup(data, "product.colour") == (False, None)
        assert lookup(data, "product.id.more") == (False, None)

    def test_profile_fields_and_attributes(self) -> None:
        view = ProfileView(id="p1", tags=["vip"], lifecycle_stage="lead", attributes={"city": "Hà Nội"})
        assert view.attribute("tags") == (True, ["vip"])
        assert view.attribute("lifecycle_stage") == (True, "lead")
        assert view.attribute("timezone") == (False, None)
        assert view.attribute("city") == (True, "Hà Nội")
        assert view.attribute("missing") == (False, None)


class TestMatching:
    def test_all_property_conditions_must_hold(self) -> None:
        conditions = [
            PropertyCondition(property="dwell_seconds", op="gte", value=15),
            PropertyCondition(property="product.category", value="vay"),
        ]
        assert matches_properties(conditions, {"dwell_seconds": 16, "product": {"category": "vay"}})
        assert not matches_properties(conditions, {"dwell_seconds": 16, "product": {"category": "ao"}})
        assert not matches_properties(conditions, {"dwell_seconds": 9, "product": {"category": "vay"}})
        assert matches_properties([], {})

    def test_audience(self) -> None:
        conditions = [
            AttributeCondition(attribute="city", op="in", value=["Hà Nội", "TP.HCM"]),
            AttributeCondition(attribute="tags", op="contains", value="vip"),
        ]
        assert matches_audience(conditions, profile(city="Hà Nội", tags=("vip",)))
        assert not matches_audience(conditions, profile(city="Hà Nội"))
        assert not matches_audience(conditions, profile(tags=("vip",)))

    def test_correlation_needs_both_values_equal(self) -> None:
        trigger = TriggerSnapshot(event_id="e", name="product_viewed", properties={"product_id": "A"}, timestamp=T0)
        assert correlated(["product_id"], {"product_id": "A"}, trigger)
        assert not correlated(["product_id"], {"product_id": "B"}, trigger)
        assert not correlated(["product_id"], {}, trigger)
        assert not correlated(["sku"], {"sku": None}, trigger)  # the trigger has no sku
        assert correlated([], {}, trigger)


class TestLocalTime:
    def test_next_local_time_later_today(self) -> None:
        # 10:00 in Ho Chi Minh City -> 19:30 the same day = 12:30 UTC.
        assert next_local_time(T0, time(19, 30), HCM) == datetime(2025, 6, 2, 12, 30, tzinfo=UTC)

    def test_next_local_time_tomorrow(self) -> None:
        assert next_local_time(T0, time(9, 0), HCM) == datetime(2025, 6, 3, 2, 0, tzinfo=UTC)

    def test_at_the_very_moment(self) -> None:
        assert next_local_time(T0, time(10, 0), HCM) == T0

    def test_across_the_local_midnight(self) -> None:
        late = datetime(2025, 6, 2, 17, 30, tzinfo=UTC)  # 00:30 on June 3rd in HCM
        assert next_local_time(late, time(9, 0), HCM) == datetime(2025, 6, 3, 2, 0, tzinfo=UTC)

    def test_daylight_saving_changes(self) -> None:
        paris = visitor_zone("Europe/Paris", "UTC")
        # 2025-03-30: clocks jump from 02:00 to 03:00; 09:00 is UTC+2 that day.
        before = datetime(2025, 3, 29, 12, 0, tzinfo=UTC)
        assert next_local_time(before, time(9, 0), paris) == datetime(2025, 3, 30, 7, 0, tzinfo=UTC)
        # 02:30 does not exist that day: it lands just after the gap, still on the 30th.
        gap = next_local_time(before, time(2, 30), paris)
        assert gap.astimezone(paris).date().isoformat() == "2025-03-30"

    def test_unknown_zone_falls_back(self) -> None:
        assert visitor_zone("Not/AZone", "Asia/Ho_Chi_Minh").key == "Asia/Ho_Chi_Minh"
        assert visitor_zone(None, "Asia/Bangkok").key == "Asia/Bangkok"
        assert visitor_zone(None, "nonsense").key == "UTC"


class TestQuietHours:
    overnight = QuietHours(start=time(21, 0), end=time(8, 0))
    lunch = QuietHours(start=time(12, 0), end=time(13, 30))

    @pytest.mark.parametrize(
        ("utc_hour", "utc_minute", "quiet"),
        [
            (13, 59, False),  # 20:59 local
            (14, 0, True),  # 21:00
            (20, 0, True),  # 03:00
            (0, 59, True),  # 07:59
            (1, 0, False),  # 08:00
            (3, 0, False),  # 10:00
        ],
    )
    def test_overnight(self, utc_hour: int, utc_minute: int, quiet: bool) -> None:
        moment = datetime(2025, 6, 2, utc_hour, utc_minute, tzinfo=UTC)
        assert in_quiet_hours(moment, self.overnight, HCM) is quiet

    def test_within_a_day(self) -> None:
        assert in_quiet_hours(datetime(2025, 6, 2, 5, 0, tzinfo=UTC), self.lunch, HCM)  # 12:00
        assert not in_quiet_hours(datetime(2025, 6, 2, 6, 30, tzinfo=UTC), self.lunch, HCM)  # 13:30

    def test_end_is_the_next_end_time(self) -> None:
        at_night = datetime(2025, 6, 2, 16, 0, tzinfo=UTC)  # 23:00 local
        assert quiet_hours_end(at_night, self.overnight, HCM) == datetime(2025, 6, 3, 1, 0, tzinfo=UTC)
        after_midnight = datetime(2025, 6, 2, 19, 0, tzinfo=UTC)  # 02:00 on the 3rd local
        assert quiet_hours_end(after_midnight, self.overnight, HCM) == datetime(2025, 6, 3, 1, 0, tzinfo=UTC)


class TestViewsOfStoredModels:
    def test_profile_view_from_a_stored_profile(self) -> None:
        stored = Profile(
            profile_id="p_1",
            source_id="shop",
            traits={"first_name": "Lan", "city": "Hà Nội"},
            email="lan@example.com",
            phone="0901234567",
            timezone="Asia/Ho_Chi_Minh",
            consent={"sms": "denied"},
            web_push_subscriptions=[
                WebPushSubscription(
                    endpoint="https://push.example/1", keys={"p256dh": "k", "auth": "a"}, subscribed_at=T0
                )
            ],
            tags=["vip"],
            lifecycle_stage="customer",
            visit_count=3,
            recent_events={"purchase": [T0]},
            last_viewed_product={"product_id": "vay-nu-he"},
        )
        view = ProfileView.from_profile(stored, OPT_OUT)
        assert view.id == "p_1"
        assert view.timezone == "Asia/Ho_Chi_Minh"
        assert view.reachable_channels == {"web_push", "email", "zalo_zns"}  # SMS consent denied
        # Opt-in (the default policy): no email or ZNS marketing without a recorded yes.
        assert ProfileView.from_profile(stored).reachable_channels == {"web_push"}
        assert ProfileView.from_profile(stored).deliverable_channels == {"web_push", "email", "sms", "zalo_zns"}
        assert view.can_reach("onsite_form")
        assert not view.can_reach("sms")
        assert view.attribute("first_name") == (True, "Lan")
        assert view.attribute("is_returning") == (True, True)
        assert view.attribute("last_viewed_product.product_id") == (True, "vay-nu-he")
        assert view.attribute("tags") == (True, ["vip"])
        assert view.event_history == {"purchase": [T0]}

    def test_event_input_from_a_tracked_event(self) -> None:
        tracked = TrackedEvent(
            source_id="shop",
            message_id="m-1",
            type="track",
            event="Product Viewed",
            anonymous_id="a-1",
            properties={"product_id": "vay-nu-he"},
            timestamp=T0,
            received_at=T0,
        )
        assert EventInput.from_tracked(tracked) == EventInput(
            id="m-1", name="product_viewed", properties={"product_id": "vay-nu-he"}, timestamp=T0
        )
