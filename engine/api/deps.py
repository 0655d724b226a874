"""Request dependencies: the worker's services and the two kinds of API key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from engine.services import Services


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def require_site_key(
    services: ServicesDep,
    x_api_key: Annotated[str | None, Header(description="a site key")] = None,
) -> None:
    services.api_keys.check_site(x_api_key)


async def require_admin_key(
    services: ServicesDep,
    x_admin_key: Annotated[str | None, Header(description="the admin key")] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    services.api_keys.check_admin(x_admin_key, x_api_key)
