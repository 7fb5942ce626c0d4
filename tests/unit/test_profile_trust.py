"""The trust model for the public write key, in the fold and in identity resolution.

"browser": the write key alone (anyone); "signed": a userId with a valid user_hash; "server": a
trusted source's key. See docs/architecture.md, "Trust model for the public write key".
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from footprint.models.consent import OPT_OUT
from footprint.models.profile import CONSENT_CONFIRMED, Profile, fold_event, merge_profiles, new_profile, profile_id_for
from footprint.services.profiles import ProfileService, alias_key
from tests.builders import T0, tracked
from tests.fakes import InMemoryProfileStore

LAN = {"email": "lan@example.com", "phone": "+84901234567"}


def known_contact() -> Profile:
    return fold_event(
        Profile(profile_id="lan", source_id="demo"),
        tracked("identify", anonymous_id="lan-phone", user_id="u-lan", traits={**LAN, "consent": {"email": True}}),
    )


# ---------------------------------------------------------------- the fold


def test_a_browser_call_does_not_bind_a_user_id_and_keeps_it_as_unverified() -> None:
    profile = fold_event(new_profile("p1", "demo"), tracked("identify", user_id="u-lan", trust="browser"))
    assert profile.user_id is None
    assert profile.unverified_user_id == "u-lan"
    assert not profile.is_known


@pytest.mark.parametrize("trust", ["signed", "server"])
def test_a_vouched_for_call_binds_its_user_id(trust: str) -> None:
    profile = fold_event(new_profile("p1", "demo"), tracked("identify", user_id="u-lan", trust=trust))
    assert profile.user_id == "u-lan"
    assert profile.unverified_user_id is None


@pytest.mark.parametrize("trust", ["browser", "signed"])
def test_addresses_from_a_browser_wait_for_confirmation(trust: str) -> None:
    profile = fold_event(
        new_profile("p1", "demo"), tracked("identify", user_id="u1", traits={**LAN, "name": "Lan"}, trust=trust)
    )
    assert (profile.email, profile.phone, profile.traits) == (LAN["email"], LAN["phone"], {"name": "Lan"})
    assert profile.consent == {"email": "pending", "sms": "pending", "zalo_zns": "pending"}
    for channel in ("email", "sms", "zalo_zns"):
        assert not profile.reachable_on(channel)  # type: ignore[arg-type]
    assert profile.reachable_on("onsite", OPT_OUT)


def test_a_consent_checkbox_in_a_page_is_pending_too_but_a_withdrawal_is_not() -> None:
    profile = fold_event(
        new_profile("p1", "demo"),
        tracked("identify", traits={"email": LAN["email"], "consent": {"email": True, "sms": False}}, trust="browser"),
    )
    assert profile.consent == {"email": "pending", "sms": "denied"}
    denied = fold_event(profile, tracked(event="unsubscribed", properties={"channel": "email"}, trust="browser"))
    assert denied.consent["email"] == "denied"
    # A new address does not undo a withdrawal.
    again = fold_event(denied, tracked("identify", traits={"email": "other@example.com"}, trust="browser"))
    assert again.consent["email"] == "denied"


def test_a_server_sets_addresses_and_consent_directly() -> None:
    profile = known_contact()
    assert profile.consent == {"email": "granted"}
    assert profile.reachable_on("email", OPT_OUT)
    assert profile.reachable_on("sms", OPT_OUT)


def test_consent_confirmed_from_a_trusted_source_grants_the_pending_address() -> None:
    pending = fold_event(new_profile("p1", "demo"), tracked("identify", traits=LAN, trust="browser"))
    confirm = {"channel": "email", "address": "LAN@example.com "}
    # A browser cannot confirm its own address, and a confirmation of another address confirms nothing.
    for event in (
        tracked(event=CONSENT_CONFIRMED, properties=confirm, trust="browser"),
        tracked(event=CONSENT_CONFIRMED, properties=confirm, trust="signed"),
        tracked(event=CONSENT_CONFIRMED, properties={"channel": "email", "address": "old@example.com"}),
        tracked(event=CONSENT_CONFIRMED, properties={"channel": "nope"}),
    ):
        assert fold_event(pending, event).consent == pending.consent
    confirmed = fold_event(pending, tracked(event=CONSENT_CONFIRMED, properties=confirm))
    assert confirmed.consent == {"email": "granted", "sms": "pending", "zalo_zns": "pending"}
    assert confirmed.reachable_on("email", OPT_OUT)
    assert not confirmed.reachable_on("sms", OPT_OUT)
    sms = fold_event(confirmed, tracked(event=CONSENT_CONFIRMED, properties={"channel": "sms"}))
    assert sms.reachable_on("sms", OPT_OUT)
    # A changed address needs a new confirmation.
    changed = fold_event(confirmed, tracked("identify", traits={"email": "new@example.com"}, trust="browser"))
    assert not changed.reachable_on("email", OPT_OUT)


def test_a_browser_reaching_a_known_contact_cannot_change_addresses_or_consent() -> None:
    # E.g. a shared computer: the contact's browser, used by someone else, without a user_hash.
    contact = known_contact()
    event = tracked(
        "identify",
        anonymous_id="lan-phone",
        traits={"email": "mallory@example.com", "phone": "+84000000000", "consent": {"sms": False}, "city": "Huế"},
        trust="browser",
    )
    after = fold_event(contact, event)
    assert (after.email, after.phone, after.consent) == (contact.email, contact.phone, contact.consent)
    assert after.traits["city"] == "Huế"  # free traits are the visitor's to set
    for name, props in (
        ("unsubscribed", {"channel": "email"}),
        ("consent_updated", {"channel": "sms", "granted": False}),
    ):
        assert fold_event(contact, tracked(event=name, properties=props, trust="browser")).consent == contact.consent
    # The browser's own channels stay its own.
    onsite = fold_event(contact, tracked(event="unsubscribed", properties={"channel": "onsite"}, trust="browser"))
    assert onsite.consent["onsite"] == "denied"


def test_a_signed_call_may_change_its_contacts_address_which_then_waits_for_confirmation() -> None:
    contact = known_contact()
    after = fold_event(
        contact, tracked("identify", user_id="u-lan", traits={"email": "lan@new.example"}, trust="signed")
    )
    assert after.email == "lan@new.example"
    assert after.consent["email"] == "pending"


def test_a_merge_keeps_each_address_with_its_own_consent() -> None:
    contact = fold_event(
        Profile(profile_id="c", source_id="demo", user_id="u1"), tracked("identify", traits={"email": "a@x.vn"})
    )
    anonymous = fold_event(new_profile("p1", "demo"), tracked("identify", traits=LAN, trust="browser"))
    merged, _ = merge_profiles(contact, anonymous)
    assert merged.email == "a@x.vn"
    assert merged.reachable_on("email", OPT_OUT)  # the contact's address, not waiting for anything
    assert merged.phone == LAN["phone"]
    assert not merged.reachable_on("sms", OPT_OUT)  # the browser's phone number is still pending


# ---------------------------------------------------------------- identity resolution


def service() -> tuple[ProfileService, InMemoryProfileStore]:
    store = InMemoryProfileStore()
    return ProfileService(store), store


def lan_is_known(svc: ProfileService) -> str:
    update = svc.apply(tracked("identify", anonymous_id="lan-phone", user_id="u-lan", traits=LAN), T0)
    return update.profile.profile_id


def test_a_browser_naming_a_known_user_id_stays_on_its_own_profile() -> None:
    svc, store = service()
    lan = lan_is_known(svc)
    svc.apply(tracked(anonymous_id="mallory", trust="browser"), T0)
    update = svc.apply(
        tracked("identify", anonymous_id="mallory", user_id="u-lan", traits={"email": "m@evil.test"}, trust="browser"),
        T0,
    )
    assert update.merged_from is None
    assert update.profile.profile_id == profile_id_for("demo", "anon", "mallory")
    assert update.profile.unverified_user_id == "u-lan"
    assert store.aliases[alias_key("demo", "anon", "mallory")] == update.profile.profile_id
    assert store.aliases[alias_key("demo", "user", "u-lan")] == lan
    assert store.profiles[lan].email == LAN["email"]
    assert store.profiles[lan].anonymous_ids == ["lan-phone"]


def test_a_browser_call_with_only_a_user_id_is_a_visitor_of_its_own() -> None:
    svc, store = service()
    lan = lan_is_known(svc)
    update = svc.apply(
        tracked(
            event="unsubscribed", anonymous_id=None, user_id="u-lan", properties={"channel": "email"}, trust="browser"
        ),
        T0,
    )
    assert update.profile.profile_id not in (lan, profile_id_for("demo", "user", "u-lan"))
    assert store.profiles[lan].reachable_on("email", OPT_OUT)


def test_an_unsigned_alias_links_nothing() -> None:
    svc, _store = service()
    lan = lan_is_known(svc)
    svc.apply(tracked(anonymous_id="mallory", trust="browser"), T0)
    update = svc.apply(
        tracked("alias", anonymous_id="mallory", user_id="u-lan", previous_id="lan-phone", trust="browser"), T0
    )
    assert update.merged_from is None
    assert update.profile.profile_id != lan


def test_a_signed_alias_cannot_take_over_another_user_id() -> None:
    svc, store = service()
    lan = lan_is_known(svc)
    # Mallory has an account of her own and a valid user_hash for it.
    svc.apply(tracked("identify", anonymous_id="mallory", user_id="u-mallory", trust="signed"), T0)
    update = svc.apply(
        tracked("alias", anonymous_id="mallory", user_id="u-mallory", previous_id="u-lan", trust="signed"), T0
    )
    assert update.merged_from is None
    assert store.profiles[lan].merged_into is None


def test_a_signed_identify_merges_the_browser_into_its_contact() -> None:
    svc, store = service()
    lan = lan_is_known(svc)
    svc.apply(tracked(anonymous_id="lan-laptop", trust="browser"), T0)
    update = svc.apply(tracked("identify", anonymous_id="lan-laptop", user_id="u-lan", trust="signed"), T0)
    assert update.merged_from == profile_id_for("demo", "anon", "lan-laptop")
    assert update.profile.profile_id == lan
    assert store.aliases[alias_key("demo", "anon", "lan-laptop")] == lan


@pytest.mark.parametrize("trust", ["signed", "server"])
def test_a_second_person_logging_in_on_a_shared_browser_gets_a_profile_of_their_own(trust: str) -> None:
    svc, store = service()
    lan = lan_is_known(svc)
    update = svc.apply(
        tracked("identify", anonymous_id="lan-phone", user_id="u-minh", after=timedelta(minutes=5), trust=trust), T0
    )
    assert update.merged_from is None
    assert update.profile.profile_id == profile_id_for("demo", "user", "u-minh")
    assert update.profile.user_id == "u-minh"
    assert store.profiles[lan].user_id == "u-lan"
    assert store.profiles[lan].merged_into is None
    # The browser follows whoever logged in last.
    assert store.aliases[alias_key("demo", "anon", "lan-phone")] == update.profile.profile_id
    assert store.aliases[alias_key("demo", "user", "u-lan")] == lan


def test_a_trusted_alias_still_merges_two_user_ids() -> None:
    svc, store = service()
    lan = lan_is_known(svc)
    svc.apply(tracked("identify", anonymous_id=None, user_id="u-lan-new"), T0)
    update = svc.apply(tracked("alias", anonymous_id=None, user_id="u-lan-new", previous_id="u-lan"), T0)
    assert update.merged_from == lan
    assert store.profiles[lan].merged_into == update.profile.profile_id


def test_a_shared_browser_logging_in_as_another_existing_contact_does_not_merge_the_two() -> None:
    svc, store = service()
    lan = lan_is_known(svc)
    minh = svc.apply(tracked("identify", anonymous_id="minh-phone", user_id="u-minh"), T0).profile.profile_id
    update = svc.apply(tracked("identify", anonymous_id="lan-phone", user_id="u-minh", trust="signed"), T0)
    assert update.merged_from is None
    assert update.profile.profile_id == minh
    assert store.profiles[lan].merged_into is None
    assert store.profiles[minh].merged_into is None
    assert store.aliases[alias_key("demo", "anon", "lan-phone")] == minh
