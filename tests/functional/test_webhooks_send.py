"""`billing webhooks send`: a notification signed as Paddle signs it, posted to a running
service, which verifies it with its own secret and keeps it (once)."""

from billing_app.models import WebhookEvent
from tests.helpers.config import PADDLE_BASE
from tests.helpers.samples import SAMPLES, sample


def send(app, *arguments: str):
    return app.test_cli_runner().invoke(args=["billing", "webhooks", "send", *arguments])


def test_a_file_is_signed_posted_and_kept_once(app, session, served):
    url = f"{served}/webhooks/paddle"
    file = SAMPLES / "webhook-subscription.updated.json"
    first = send(app, str(file), "--url", url)
    assert first.exit_code == 0, first.output
    assert first.output.startswith(f"POST {url}: 200 ") and '"accepted"' in first.output
    again = send(app, str(file), "--url", url)
    assert again.exit_code == 0 and '"duplicate"' in again.output
    kept = session.query(WebhookEvent).one()
    assert kept.event_id == sample("webhook-subscription.updated.json")["event_id"]


def test_a_type_carries_what_paddle_holds_now_for_the_subscription(app, session, served, paddle):
    paddle.add_passthru(served)
    subscription = sample("api-subscription-get.json")["data"]
    paddle_id = subscription["id"]
    paddle.get(f"{PADDLE_BASE}/subscriptions/{paddle_id}", json={"data": subscription})
    result = send(
        app,
        "--type",
        "subscription.paused",
        "--subscription",
        paddle_id,
        "--url",
        f"{served}/webhooks/paddle",
    )
    assert result.exit_code == 0, result.output
    kept = session.query(WebhookEvent).one()
    assert kept.event_type == "subscription.paused" and kept.entity_id == paddle_id
    assert kept.event_id.startswith("evt_") and kept.notification_id.startswith("ntf_")


def test_what_is_missing_is_said_in_one_line(app, monkeypatch):
    assert "needs --subscription" in send(app, "--type", "subscription.updated").output
    assert "Give FILE, or --type" in send(app, "--type", "customer.updated").output
    unreachable = send(
        app,
        str(SAMPLES / "webhook-subscription.updated.json"),
        "--url",
        "http://127.0.0.1:1/webhooks/paddle",
    )
    assert (
        unreachable.exit_code == 1 and "Could not post to http://127.0.0.1:1" in unreachable.output
    )
    monkeypatch.setitem(app.config, "PADDLE_WEBHOOK_SECRETS", [])
    refused = send(app, str(SAMPLES / "webhook-subscription.updated.json"))
    assert refused.exit_code == 1 and "set PADDLE_WEBHOOK_SECRETS" in refused.output


def test_a_refused_delivery_exits_non_zero(app, served, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"event_type": "subscription.updated"}')
    result = send(app, str(broken), "--url", f"{served}/webhooks/paddle")
    assert result.exit_code == 1
    assert result.output.startswith(f"POST {served}/webhooks/paddle: 4")
