"""`omotenashi demo`: a shop, its shoppers, and the engine serving them, in one command.

Starts the service (embedded Redis unless REDIS_URL is set) with the demo shop's pages
at /demo, loads the shop through the admin API and its returning customers' histories
through the events API, drives simulated shoppers through the public API, prints what
happened, trains a recommender on their events and shows what it recommends, then
keeps serving until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import httpx
import orjson
import uvicorn

from engine.app import create_app
from engine.cli.runtime import configure_logging, prepared_settings
from engine.client import OmotenashiClient
from engine.events.archive import archive_once
from engine.settings import Settings
from engine.store.client import Store
from models.interactions import DEFAULT_WEIGHTS
from training import demo_shop
from training.interactions import from_archive
from training.recs_train import RecsParams, encode, save_trained, train_recs
from training.simulator import Simulator
from training.traffic import TrafficTally, drive


def demo(
    *, host: str, port: int, visitors: int, seconds: float, seed: int, exit_after_traffic: bool
) -> None:
    with prepared_settings() as settings:
        configure_logging("WARNING")
        settings = settings.model_copy(update={"demo": True})
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
    app = create_app(settings)
    config = uvicorn.Config(
        app,
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
        await load_returning_customers(client, site_key)
        simulator = Simulator(demo_shop.world(), seed=seed)
        shoppers = simulator.visitors(visitors, id_prefix=f"demo{seed}")
        print(f"Omotenashi demo: {len(shoppers)} simulated shoppers visiting {base} ...")
        async with OmotenashiClient(base, site_key=site_key, timeout_s=10) as engine:
            tally = await drive(engine, simulator, shoppers, list(demo_shop.SLOTS), seconds=seconds)
        print(render_report(tally))
        store: Store = app.state.services.store
        print(await train_and_recommend(client, store, settings, [s.visitor_id for s in shoppers]))
    print(render_next_steps(base, site_key, admin_key), flush=True)  # then it only serves
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


async def load_returning_customers(client: httpx.AsyncClient, site_key: str) -> None:
    """Send the demo's returning customers' histories through the events API, so the
    shop's visitor switcher can show what each of them is shown."""
    events = [e for c in demo_shop.RETURNING_CUSTOMERS for e in demo_shop.history_events(c)]
    response = await client.post(
        "/v1/events", headers={"X-Api-Key": site_key}, json={"events": events}
    )
    response.raise_for_status()
    if rejected := response.json()["rejected"]:
        raise RuntimeError(f"the demo's customer histories were refused: {rejected}")


async def train_and_recommend(
    client: httpx.AsyncClient, store: Store, settings: Settings, visitors: list[str]
) -> str:
    """The offline loop, end to end: archive the traffic's events, train the recommender
    on them, activate it through the API, and show what it recommends."""
    started = time.perf_counter()
    run = await archive_once(store, settings.archive_path)
    interactions = from_archive(settings.archive_path)
    params = RecsParams(factors=16, iterations=10, regularization=0.1)

    def train() -> str:
        trained = train_recs(encode(interactions), params, evaluate=False)
        return save_trained(
            settings.artifacts_dir,
            trained,
            event_weights=DEFAULT_WEIGHTS,
            data={"source": str(settings.archive_path), "format": "events (demo traffic)"},
            top_k=100,
        )

    version = await asyncio.to_thread(train)  # the server shares this event loop
    admin = {"X-Admin-Key": settings.admin_key.get_secret_value() if settings.admin_key else ""}
    (await client.post(f"/v1/models/recs/{version}/activate", headers=admin)).raise_for_status()
    for _ in range(100):  # workers look for a new version every OMOTENASHI_MODELS_REFRESH_MS
        if (await client.get("/readyz")).json()["checks"].get("recs_loaded") == version:
            break
        await asyncio.sleep(0.1)
    lines = [
        "",
        f"recommender: archived {run.rows_written} events, trained ALS on "
        f"{len(interactions)} visitor-item interactions, version {version} is live "
        f"({time.perf_counter() - started:.1f} s)",
    ]
    site = {"X-Api-Key": settings.site_keys[0]}
    for visitor_id in [*visitors[:2], "someone-new"]:
        response = await client.get(
            "/v1/recommendations", headers=site, params={"visitor_id": visitor_id, "n": 5}
        )
        body = response.json()
        items = ", ".join(item["item_id"] for item in body.get("items", [])) or "-"
        lines.append(f"  {visitor_id:<16} ({body.get('source', response.status_code)}): {items}")
    return "\n".join(lines)


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
  demo shop     {base}/demo   (switch visitors, see each block's decision)
  API docs      {base}/docs
  health        {base}/healthz   {base}/readyz   {base}/metrics
  decide        curl -s {base}/v1/decide -H 'X-Api-Key: {site_key}' \\
                  -H 'Content-Type: application/json' \\
                  -d '{decide_body}'
  events        curl -s {base}/v1/events -H 'X-Api-Key: {site_key}' \\
                  -H 'Content-Type: application/json' \\
                  -d '{event_body}'
  recommend     curl -s '{base}/v1/recommendations?visitor_id=me&n=5' -H 'X-Api-Key: {site_key}'
  models        curl -s {base}/v1/models -H 'X-Admin-Key: {admin_key}'
  a slot        curl -s {base}/v1/slots/home_hero -H 'X-Admin-Key: {admin_key}'
"""
