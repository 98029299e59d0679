"""The simulator driven in-process, as the unit tests drive it: its key, where it sends
webhooks, and a paid checkout."""

KEY = "pdl_sdbx_apikey_sim"
HOOK = "http://service.test/webhooks/paddle"
SECRET = "pdl_ntfset_sim_secret"
STARTER = "pri_01hsim0startermonth000000"
AUTH = {"Authorization": f"Bearer {KEY}"}


def checkout(http, **custom):
    created = http.post(
        "/transactions",
        json={"items": [{"price_id": STARTER, "quantity": 1}], "custom_data": custom or None},
        headers=AUTH,
    ).json["data"]
    return http.post(f"/_sim/transactions/{created['id']}/complete", json={}).json["data"]
