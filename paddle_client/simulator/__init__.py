"""A stateful, in-memory simulator of the part of Paddle Billing the service uses.

For development and tests only: production points at Paddle's sandbox or live API.
Start it with `python -m paddle_client.simulator --port 8090 --api-key K --webhook-url URL
--webhook-secret S`; drive it through Paddle's own paths and the control API under `/_sim/`.
"""

from paddle_client.simulator.app import SimulatorApp, create_simulator

__all__ = ["SimulatorApp", "create_simulator"]
