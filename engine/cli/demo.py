"""`omotenashi demo`: a shop, its shoppers, and the engine serving them, in one command.

Starts the service (embedded Redis unless REDIS_URL is set), loads the demo shop
through the admin API, drives simulated shoppers through the public API, prints what
happened, then keeps serving until Ctrl-C.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import httpx
import orjson
import uvicorn

from engine.app import create_app
from engine.cli.runtime import configure_logging, prepared_settings
from engine.settings import Settings
from training import demo_shop
from training.simulator import Simulator
from training.traffic import TrafficTally, drive


def demo(
    *, host: str, port: int, visitors: int, seconds: float, seed: int, exit_after_traffic: bool
) -> None:
    with prepared_settings() as settings:
        configure_logging("WARNING")
        asyncio.run(_demo(settings, host, port, visitors, seconds, seed, exit_after_traffic))


async def _demo(
    settings: Settings,
    host: str,
    port: int,
    visitors: int,
    seconds: float,
    seed: int,
    exit_after_traffic: bool,
) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        loop="none",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # surfaces the startup error
            raise SystemExit(f"omotenashi demo: could not start on {host}:{port}")
        await asyncio.sleep(0.05)
    base = f"http://{host}:{port}"
    site_key = settings.site_keys[0]
    assert settings.admin_key is not None
    admin_key = settings.admin_key.get_secret_value()
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        await load_shop(client, admin_key)
        simulator = Simulator(demo_shop.world(), seed=seed)
        shoppers = simulator.visitors(visitors, id_prefix=f"demo{seed}")
        print(f"Omotenashi demo: {len(shoppers)} simulated shoppers visiting {base} ...")
        tally = await drive(
            client, simulator, shoppers, list(demo_shop.SLOTS), site_key=site_key, seconds=seconds
        )
    print(render_report(tally))
    print(render_next_steps(base, site_key, admin_key))
    if exit_after_traffic:
        server.should_exit = True
    await serving


async def load_shop(client: httpx.AsyncClient, admin_key: str) -> None:
    """Put the demo shop's segments, slots and catalogue through the admin API."""
    headers = {"X-Admin-Key": admin_key}
    for name, segment in demo_shop.SEGMENTS.items():
        (await client.put(f"/v1/segments/{name}", headers=headers, json=segment)).raise_for_status()
    for name, slot in demo_shop.SLOTS.items():
        (await client.put(f"/v1/slots/{name}", headers=headers, json=slot)).raise_for_status()
    items = demo_shop.catalogue()
    (await client.put("/v1/items", headers=headers, json={"items": items})).raise_for_status()


def render_report(tally: TrafficTally) -> str:
    """Decisions per variant and persona, with observed click rates, as text tables."""
    lines = [
        "",
        f"visits {tally.visits}   events accepted {tally.events_accepted}   "
        f"rejected {tally.events_rejected}   revenue ${tally.revenue:,.2f}",
        "policies: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.policies.items())),
        "segments at decide time: "
        + (", ".join(f"{k} {v}" for k, v in sorted(tally.segments.items())) or "none"),
    ]
    if tally.errors:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in tally.errors.items()))
    by_slot: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    for (persona, slot, variant), n in tally.decisions.items():
        by_slot[slot][(persona, variant)] = n
    for slot, cells in sorted(by_slot.items()):
        personas = sorted({p for p, _ in cells})
        variants = sorted({v for _, v in cells})
        width = max(len(v) for v in variants) + 2
        lines += [
            "",
            f"{slot}: shown (clicks) by persona",
            " " * 14 + "".join(f"{v:>{width + 6}}" for v in variants),
        ]
        for persona in personas:
            row = f"{persona:<14}"
            for variant in variants:
                shown = cells.get((persona, variant), 0)
                clicks = tally.clicks[(persona, slot, variant)]
                row += f"{f'{shown} ({clicks})' if shown else '-':>{width + 6}}"
            lines.append(row)
    return "\n".join(lines)


def render_next_steps(base: str, site_key: str, admin_key: str) -> str:
    decide_body = orjson.dumps(
        {"visitor_id": "me", "slots": ["home_hero", "cart_banner"], "context": {"device": "mobile"}}
    ).decode()
    event_body = orjson.dumps(
        {
            "events": [
                {"type": "page_view", "visitor_id": "me", "properties": {"category": "sports"}}
            ]
        }
    ).decode()
    return f"""
The engine keeps serving at {base}  (Ctrl-C stops it)
  API docs      {base}/docs
  health        {base}/healthz   {base}/readyz   {base}/metrics
  decide        curl -s {base}/v1/decide -H 'X-Api-Key: {site_key}' \\
                  -H 'Content-Type: application/json' \\
                  -d '{decide_body}'
  events        curl -s {base}/v1/events -H 'X-Api-Key: {site_key}' \\
                  -H 'Content-Type: application/json' \\
                  -d '{event_body}'
  a slot        curl -s {base}/v1/slots/home_hero -H 'X-Admin-Key: {admin_key}'
"""
