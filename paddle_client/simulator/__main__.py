"""Start the simulator:

    python -m paddle_client.simulator --port 8090 --api-key K --webhook-url URL --webhook-secret S

Each option can also come from the environment: PADDLE_SIM_PORT, PADDLE_SIM_API_KEY, ...
"""

from __future__ import annotations

import argparse
import logging
import os

from werkzeug.serving import run_simple

from paddle_client.simulator.app import create_simulator


def main(argv: list[str] | None = None) -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description="A local Paddle Billing simulator (development and tests only)."
    )
    parser.add_argument("--host", default=env("PADDLE_SIM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("PADDLE_SIM_PORT", "8090")))
    parser.add_argument(
        "--api-key", default=env("PADDLE_SIM_API_KEY"), help="the Bearer key it accepts"
    )
    parser.add_argument("--webhook-url", default=env("PADDLE_SIM_WEBHOOK_URL"))
    parser.add_argument("--webhook-secret", default=env("PADDLE_SIM_WEBHOOK_SECRET"))
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("--api-key (or PADDLE_SIM_API_KEY) is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sim %(levelname)s %(message)s")
    public_url = f"http://{args.host}:{args.port}"
    app = create_simulator(args.api_key, args.webhook_url, args.webhook_secret, public_url)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
