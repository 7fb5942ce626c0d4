"""Identity resolution and exactly-once folding, against the in-memory store."""

from __future__ import annotations

from datetime import timedelta

from footprint.models.profile import profile_id_for
from footprint.services.profiles import ProfileService, alias_key
from tests.builders import T0, tracked
from tests.fakes import InMemoryProfileStore


def service() -> tuple[ProfileService, InMemoryProfileStore]:
    store = InMemoryProfileStore()
    return ProfileService(store), store


def test_first_event_creates_an_anonymous_profile_with_a_deterministic_id() -> None:
    svc, store = service()
    update = svc.apply(tracked(anonymous_id="a1"), T0)
    assert update.profile.profile_id == profile_id_for("demo", "anon", "a1")
    assert store.aliases[alias_key("demo", "anon", "a1")] == update.profile.profile_id
    assert update.profile.revision == 1


def test_redelivered_event_is_folded_once() -> None:
    svc, store = service()
    event = tracked(anonymous_id="a1")
    svc.apply(event, T0)
    again = svc.apply(event, T0)
    assert again.already_applied
    assert store.profiles[again.profile.profile_id].event_count == 1


def test_identify_merges_the_anonymous_visitor_into_the_known_contact() -> None:
    svc, store = service()
    # The contact is known from another device first.
    known = svc.apply(tracked("identify", anonymous_id="phone", user_id="u1", traits={"email": "lan@example.com"}), T0)
    # Browsing anonymously on a laptop...
    svc.apply(tracked(anonymous_id="laptop", after=timedelta(minutes=1)), T0)
    svc.apply(tracked(anonymous_id="laptop", after=timedelta(minutes=2)), T0)
    laptop_profile = profile_id_for("demo", "anon", "laptop")
    # ...then logging in there.
    update = svc.apply(tracked("identify", anonymous_id="laptop", user_id="u1", after=timedelta(minutes=3)), T0)
    assert update.merged_from == laptop_profile
    assert update.profile.profile_id == known.profile.profile_id
    assert update.profile.event_count == 4
    assert set(update.profile.anonymous_ids) == {"phone", "laptop"}
    assert store.profiles[laptop_profile].merged_into == known.profile.profile_id
    assert store.aliases[alias_key("demo", "anon", "laptop")] == known.profile.profile_id
    # Later anonymous events from the laptop land on the known contact.
    later = svc.apply(tracked(anonymous_id="laptop", after=timedelta(minutes=4)), T0)
    assert later.profile.profile_id == known.profile.profile_id
    assert later.profile.event_count == 5


def test_identify_of_a_new_user_keeps_the_anonymous_profile() -> None:
    svc, store = service()
    first = svc.apply(tracked(anonymous_id="a1"), T0)
    update = svc.apply(tracked("identify", anonymous_id="a1", user_id="u9", traits={"phone": "+8490"}), T0)
    assert update.profile.profile_id == first.profile.profile_id
    assert update.profile.user_id == "u9"
    assert store.aliases[alias_key("demo", "user", "u9")] == first.profile.profile_id


def test_alias_call_links_previous_id_to_user() -> None:
    svc, _ = service()
    anon = svc.apply(tracked(anonymous_id="old-anon"), T0)
    user = svc.apply(tracked("identify", anonymous_id=None, user_id="u5"), T0)
    update = svc.apply(tracked("alias", anonymous_id=None, user_id="u5", previous_id="old-anon"), T0)
    assert update.profile.profile_id == user.profile.profile_id
    assert update.merged_from == anon.profile.profile_id


def test_a_stale_read_is_retried() -> None:
    svc, store = service()
    svc.apply(tracked(anonymous_id="a1"), T0)
    pid = profile_id_for("demo", "anon", "a1")
    original_get = store.get_profiles
    raced = {"done": False}

    def racing_get(ids):  # type: ignore[no-untyped-def]
        result = original_get(ids)
        if not raced["done"]:
            raced["done"] = True
            # Another writer bumps the revision between our read and our write.
            store.profiles[pid] = store.profiles[pid].model_copy(update={"revision": 5, "event_count": 10})
        return result

    store.get_profiles = racing_get  # type: ignore[method-assign]
    update = svc.apply(tracked(anonymous_id="a1"), T0)
    assert update.profile.event_count == 11
    assert update.profile.revision == 6
