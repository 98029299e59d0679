"""Customers: creating one (unique by email, as Paddle's), and portal sessions.

Mixed into `paddle_client.simulator.state.SimState`, whose tables, clock, ids and events
(`self.customers`, `self.now()`, `self.new_id`, `self.emit`, ...) these methods use.
"""

from __future__ import annotations

from paddle_client.simulator.clock import stamp
from paddle_client.simulator.errors import SimError, invalid_field


class Customers:
    def create_customer(self, email: str, name=None, locale=None, custom_data=None) -> dict:
        if not email or "@" not in email:
            raise invalid_field("email", "must be a valid email address")
        with self.lock:
            for existing in self.customers.values():
                if existing["email"].lower() == email.lower():
                    raise SimError(
                        409,
                        "customer_already_exists",
                        f"customer email conflicts with customer of id {existing['id']}",
                    )
            now = stamp(self.now())
            customer = {
                "id": self.new_id("ctm"),
                "name": name,
                "email": email,
                "locale": locale or "en",
                "status": "active",
                "custom_data": custom_data,
                "marketing_consent": False,
                "import_meta": None,
                "created_at": now,
                "updated_at": now,
            }
            self.customers[customer["id"]] = customer
            self.emit("customer.created", customer)
            return customer

    def portal_session(self, customer_id: str, subscription_ids: list[str]) -> dict:
        with self.lock:
            self.customer(customer_id)
            token = self.new_id("tok")
            return {
                "id": self.new_id("cpls"),
                "customer_id": customer_id,
                "urls": {
                    "general": {
                        "overview": f"{self.public_url}/portal/{customer_id}?token={token}"
                    },
                    "subscriptions": [
                        {
                            "id": sub_id,
                            "cancel_subscription": (
                                f"{self.public_url}/portal/{sub_id}/cancel?token={token}"
                            ),
                            "update_subscription_payment_method": (
                                f"{self.public_url}/portal/{sub_id}/payment?token={token}"
                            ),
                        }
                        for sub_id in subscription_ids
                    ],
                },
                "created_at": stamp(self.now()),
            }
