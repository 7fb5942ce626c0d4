"""Folding events into a profile: counters, visits, sources, identity traits, channels."""

from __future__ import annotations

from datetime import timedelta

import pytest

from footprint.models.consent import OPT_OUT
from footprint.models.profile import Profile, fold_event, merge_profiles, new_profile, profile_id_for
from tests.builders import T0, tracked


def fold_all(*events):  # type: ignore[no-untyped-def]
    profile = new_profile("p1", "demo")
    for event in events:
        profile = fold_event(profile, event)
    return profile


def test_counters_first_and_last_seen() -> None:
    profile = fold_all(
        tracked("page", anonymous_id="a", after=timedelta(minutes=1)),
        tracked(event="product_viewed", properties={"product_id": "sku-1"}),
        tracked(event="Product Viewed", after=timedelta(minutes=2), properties={"product_id": "sku-2"}),
    )
    assert profile.event_count == 3
    assert profile.page_view_count == 1
    assert profile.event_counts == {"page": 1, "product_viewed": 2}
    assert profile.first_seen_at == T0
    assert profile.last_seen_at == T0 + timedelta(minutes=2)
    assert profile.last_viewed_product is not None
    assert profile.last_viewed_product["product_id"] == "sku-2"
    assert profile.anonymous_ids == ["a", "anon-1"]


def test_new_visit_after_thirty_minutes_makes_a_returning_visitor() -> None:
    same_visit = fold_all(tracked(), tracked(after=timedelta(minutes=29)))
    assert same_visit.visit_count == 1
    assert not same_visit.is_returning
    returning = fold_all(tracked(), tracked(after=timedelta(minutes=31)))
    assert returning.visit_count == 2
    assert returning.is_returning


def test_traffic_source_from_utm_then_referrer_then_direct() -> None:
    utm = {"campaign": {"source": "facebook", "medium": "cpc", "name": "summer"}}
    profile = fold_all(
        tracked("page", context=utm),
        tracked("page", after=timedelta(hours=2), context={"page": {"referrer": "https://www.google.com/search"}}),
    )
    assert profile.first_touch is not None
    assert (profile.first_touch.source, profile.first_touch.medium, profile.first_touch.campaign) == (
        "facebook",
        "cpc",
        "summer",
    )
    assert profile.last_touch is not None
    assert (profile.last_touch.source, profile.last_touch.medium) == ("www.google.com", "referral")
    assert fold_all(tracked("page")).first_touch.source == "direct"  # type: ignore[union-attr]


def test_time_zone_uses_the_current_iana_name_for_what_browsers_report() -> None:
    profile = fold_all(tracked(context={"timezone": "Asia/Saigon"}))
    assert profile.timezone == "Asia/Ho_Chi_Minh"


def test_time_zone_from_context_ignores_invalid_names() -> None:
    profile = fold_all(tracked(context={"timezone": "Asia/Ho_Chi_Minh"}), tracked(context={"timezone": "Mars/Base"}))
    assert profile.timezone == "Asia/Ho_Chi_Minh"


def test_identify_sets_addresses_traits_and_consent() -> None:
    profile = fold_all(
        tracked(
            "identify",
            user_id="u-42",
            traits={"email": " Lan@Example.com ", "phone": "+84901234567", "name": "Lan", "consent": {"sms": False}},
        )
    )
    assert profile.user_id == "u-42"
    assert profile.email == "lan@example.com"
    assert profile.phone == "+84901234567"
    assert profile.traits == {"name": "Lan"}
    assert profile.is_known
    assert profile.reachable_on("email", OPT_OUT)
    assert not profile.reachable_on("sms", OPT_OUT)


def test_web_push_subscription_and_unsubscribe() -> None:
    sub = {"endpoint": "https://push.example/abc", "keys": {"p256dh": "k", "auth": "a"}}
    subscribed = fold_all(tracked(event="web_push_subscribed", properties={"subscription": sub}))
    assert subscribed.reachable_on("web_push", OPT_OUT)
    unsubscribed = fold_event(
        subscribed, tracked(event="web_push_unsubscribed", properties={"endpoint": sub["endpoint"]})
    )
    assert not unsubscribed.reachable_on("web_push", OPT_OUT)
    assert unsubscribed.consent["web_push"] == "denied"


def test_unsubscribe_from_email_removes_reachability() -> None:
    profile = fold_all(
        tracked("identify", traits={"email": "a@b.c"}), tracked(event="unsubscribed", properties={"channel": "email"})
    )
    assert not profile.reachable_on("email", OPT_OUT)


def test_merge_adds_counters_and_keeps_the_known_contacts_traits() -> None:
    anonymous = fold_all(tracked(anonymous_id="a1"), tracked(anonymous_id="a1", after=timedelta(hours=1)))
    known = fold_event(
        Profile(profile_id="p2", source_id="demo", user_id="u1", traits={"name": "Lan"}),
        tracked("identify", anonymous_id=None, user_id="u1", after=timedelta(hours=2), traits={"name": "Lan"}),
    )
    merged, loser = merge_profiles(known, anonymous.model_copy(update={"traits": {"name": "x", "city": "Hanoi"}}))
    assert merged.event_count == 3
    assert merged.visit_count == anonymous.visit_count + known.visit_count
    assert merged.traits == {"name": "Lan", "city": "Hanoi"}
    assert merged.first_seen_at == T0
    assert "a1" in merged.anonymous_ids
    assert loser.merged_into == "p2"


@pytest.mark.parametrize(("kind", "value"), [("anon", "a"), ("user", "u")])
def test_profile_ids_are_deterministic_and_distinct(kind: str, value: str) -> None:
    assert profile_id_for("demo", kind, value) == profile_id_for("demo", kind, value)  # type: ignore[arg-type]
    assert profile_id_for("demo", kind, value) != profile_id_for("other", kind, value)  # type: ignore[arg-type]


def test_a_group_call_s_traits_describe_the_group_not_the_person() -> None:
    person = fold_all(tracked("identify", None, traits={"name": "Trần Lan", "plan": "free"}))
    grouped = fold_event(person, tracked("group", None, traits={"name": "Công ty ABC", "plan": "enterprise"}))

    assert grouped.traits == {"name": "Trần Lan", "plan": "free"}


def test_a_hard_bounce_suppresses_the_address_for_every_message_a_soft_one_does_not() -> None:
    known = fold_event(new_profile("p", "demo"), tracked("identify", traits={"email": "Hoa@Example.com"}))
    soft = fold_event(
        known, tracked(event="message_bounced", properties={"channel": "email", "bounce_type": "Transient"})
    )
    assert soft.suppressed == {}
    assert soft.reachable_on("email", OPT_OUT)

    hard = fold_event(
        known,
        tracked(
            event="message_bounced",
            properties={"channel": "email", "bounce_type": "Permanent", "email": "hoa@example.com"},
        ),
    )
    assert hard.suppressed == {"hoa@example.com": "bounced"}
    assert not hard.reachable_on("email", OPT_OUT)
    assert not hard.deliverable_on("email")
    # A new address is not suppressed.
    moved = fold_event(hard, tracked("identify", traits={"email": "hoa.new@example.com"}))
    assert moved.reachable_on("email", OPT_OUT)


def test_a_complaint_suppresses_the_address_and_denies_email_consent() -> None:
    known = fold_event(new_profile("p", "demo"), tracked("identify", traits={"email": "hoa@example.com"}))
    complained = fold_event(known, tracked(event="message_complained", properties={"channel": "email"}))
    assert complained.suppressed == {"hoa@example.com": "complained"}
    assert complained.consent["email"] == "denied"


def test_an_unsubscribed_address_still_takes_transactional_email() -> None:
    known = fold_event(new_profile("p", "demo"), tracked("identify", traits={"email": "hoa@example.com"}))
    unsubscribed = fold_event(known, tracked(event="unsubscribed", properties={"channel": "email"}))
    assert not unsubscribed.reachable_on("email", OPT_OUT)
    assert unsubscribed.deliverable_on("email")


def test_only_footprints_own_feedback_suppresses_an_address() -> None:
    # A browser holding the visitor's anonymous id cannot report a bounce and silence her email.
    known = fold_event(new_profile("p", "demo"), tracked("identify", traits={"email": "hoa@example.com"}))
    forged = tracked(
        event="message_bounced", trust="browser", properties={"channel": "email", "bounce_type": "Permanent"}
    )
    assert fold_event(known, forged).suppressed == {}


def test_every_consent_change_is_kept_with_when_where_and_the_words_agreed_to() -> None:
    consent_line = "Tôi đồng ý nhận tư vấn qua điện thoại và SMS"
    typed = tracked(
        "identify",
        anonymous_id="anon-1",
        trust="browser",
        traits={"phone": "0912345678"},
        context={"consent_text": consent_line, "page": {"url": "https://shop.example.com/vay"}},
    )
    confirmed = tracked(
        "track",
        event="consent_confirmed",
        anonymous_id="anon-1",
        after=timedelta(minutes=2),
        properties={"channel": "sms", "address": "0912345678"},
    )
    profile = fold_all(typed, confirmed)

    assert profile.consent["sms"] == "granted"
    pending_sms = next(r for r in profile.consent_log if r.channel == "sms" and r.state == "pending")
    assert (pending_sms.text, pending_sms.page, pending_sms.trust) == (
        consent_line,
        "https://shop.example.com/vay",
        "browser",
    )
    assert pending_sms.message_id == typed.message_id
    granted = profile.consent_log[-1]
    assert (granted.channel, granted.state, granted.event, granted.trust) == (
        "sms",
        "granted",
        "consent_confirmed",
        "server",
    )
    assert granted.at == T0 + timedelta(minutes=2)
    # A call that changes no consent adds nothing.
    assert fold_event(profile, tracked("identify", anonymous_id="anon-1", traits={"name": "Lan"})).consent_log == (
        profile.consent_log
    )
