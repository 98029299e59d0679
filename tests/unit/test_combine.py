"""How a plan and its add-ons combine: features joined, numbers added, booleans or-ed,
unbounded kept, allowances and caps raised, seats added."""

from billing_app.services.entitlements.combine import (
    AddonGrant,
    added_seats,
    combined_features,
    combined_limits,
    combined_meters,
)
from billing_app.services.usage.meters import Meter

STORAGE = AddonGrant("storage", ("extra-storage",), {"storage_gb": 100}, {"api": 1000}, 2)
AUDIT = AddonGrant("audit", ("audit", "sso"), {"audit_log": True, "projects": 5}, {}, 0)


def test_numbers_add_up_per_unit_and_unbounded_stays_unbounded():
    limits = combined_limits({"storage_gb": 50, "projects": None}, ((STORAGE, 3), (AUDIT, 1)))
    assert limits["storage_gb"] == 350
    assert limits["projects"] is None


def test_booleans_or_and_a_number_beside_a_boolean():
    assert combined_limits({"audit_log": False}, ((AUDIT, 1),))["audit_log"] is True
    assert combined_limits({"projects": True}, ((AUDIT, 2),))["projects"] is True
    assert combined_limits({"projects": False}, ((AUDIT, 2),))["projects"] == 10
    assert combined_limits({}, ((AUDIT, 2),)) == {"audit_log": True, "projects": 10}


def test_features_join_once_and_seats_add():
    assert combined_features(("projects", "sso"), ((AUDIT, 1),)) == ("projects", "sso", "audit")
    assert added_seats(((STORAGE, 3), (AUDIT, 1))) == 6


def test_allowances_and_caps_rise_and_meters_the_plan_lacks_are_ignored():
    meters = combined_meters({"api": Meter("api", 5000, hard_limit=8000)}, ((STORAGE, 2),))
    assert (meters["api"].included, meters["api"].hard_limit) == (7000, 10000)
    assert combined_meters({}, ((STORAGE, 2),)) == {}
