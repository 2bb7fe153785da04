"""Login flow v2 (Nextcloud desktop and mobile apps): the client starts a flow, opens the
login page in a browser, and polls until the user has logged in there.

    POST /index.php/login/v2           -> {"poll": {"token", "endpoint"}, "login": <page URL>}
    GET  /login/v2/flow/<token>        -> the login page; POST it with user and password
    POST /login/v2/poll   token=<...>  -> 404 until granted, then once
                                          {"server", "loginName", "appPassword"}
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ecrin.core.errors import BadRequest, Forbidden, NotFound, Unauthorized
from ecrin.http.authentication import client_network
from ecrin.nextcloud import login_page
from ecrin.nextcloud.context import NextcloudContext, read_small_body

MAX_TOKEN = 256


async def start(request: Request, nc: NextcloudContext) -> Response:
    started = await nc.services.login_flows.start(request.headers.get("user-agent", ""))
    server = nc.server_url(request)
    return JSONResponse(
        {
            "poll": {"token": started.poll_token, "endpoint": f"{server}/login/v2/poll"},
            "login": f"{server}/login/v2/flow/{started.login_token}",
        },
        headers={"cache-control": "no-store"},
    )


async def page(request: Request, nc: NextcloudContext) -> Response:
    token = request.path_params.get("token", "")
    try:
        flow = await nc.services.login_flows.pending(token[:MAX_TOKEN])
    except NotFound:
        return login_page.expired()
    if request.method != "POST":
        return login_page.login_form(flow.client_name)
    form = await _form(request)
    login = form.get("user", "")
    try:
        await nc.services.login_flows.grant(
            token, login, form.get("password", ""), client_network(request)
        )
    except (Unauthorized, Forbidden) as error:
        return login_page.login_form(flow.client_name, login, error.message, error.status)
    return login_page.granted(flow.client_name)


async def poll(request: Request, nc: NextcloudContext) -> Response:
    token = (await _form(request)).get("token", "")
    try:
        if not token or len(token) > MAX_TOKEN:
            raise NotFound("no such login flow")
        collected = await nc.services.login_flows.collect(token)
    except NotFound:
        return JSONResponse([], status_code=404, headers={"cache-control": "no-store"})
    return JSONResponse(
        {
            "server": nc.server_url(request),
            "loginName": collected.login_name,
            "appPassword": collected.app_password,
        },
        headers={"cache-control": "no-store"},
    )


async def _form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (small), first value of each field."""
    body = await read_small_body(request)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("malformed form") from exc
    return {name: values[0] for name, values in fields.items() if values}
