"""The minimal page behind a public link, at /s/<token> (Nextcloud's URL for links).

- a password form when the link has one (a cookie then proves it: an HMAC of the token
  keyed by the link's password hash, so changing the password logs every visitor out);
- a folder listing with download links, or a download button for a file;
- for an upload-only link ("file drop"), an upload form that streams each file with a PUT
  to /public.php/dav/files/<token>/; the visitor sees no names and no contents.
"""

from __future__ import annotations

import hmac
from html import escape
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ecrin.core.errors import EcrinError, NotFound
from ecrin.core.model import Share, User
from ecrin.core.paths import DavPath
from ecrin.core.permissions import Permission
from ecrin.dav.live_properties import content_type_of
from ecrin.nextcloud.context import NextcloudContext, read_small_body
from ecrin.services.sharing import LINK_COOKIE as COOKIE
from ecrin.services.sharing import link_proof, link_visitor

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}"
    "li{margin:.3rem 0}button,input{font-size:1rem;padding:.4rem}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(
        html,
        status,
        headers={
            "cache-control": "no-store",
            "referrer-policy": "no-referrer",
            "x-frame-options": "DENY",
            "x-content-type-options": "nosniff",
        },
    )


async def _visitor(request: Request, nc: NextcloudContext) -> tuple[Share, User] | Response:
    token = request.path_params["token"]
    try:
        share = await nc.services.sharing.link_share(token)
        if share.expired(nc.services.clock.now()):
            raise NotFound("this link has expired")
    except EcrinError:
        return _page("Link not found", "<p>This link does not exist or has expired.</p>", 404)
    if share.password_hash and not hmac.compare_digest(
        request.cookies.get(COOKIE, ""), link_proof(share)
    ):
        return _password_form(token)
    return share, link_visitor(share)


def _password_form(token: str, error: str = "", status: int = 401) -> HTMLResponse:
    message = f'<p role="alert">{escape(error)}</p>' if error else ""
    return _page(
        "This link is protected",
        (
            f'{message}<form method="post" action="/s/{quote(token)}">'
            '<label for="password">Password</label> '
            '<input id="password" name="password" type="password" autocomplete="off" required> '
            '<button type="submit">Open</button></form>'
        ),
        status,
    )


async def show(request: Request, nc: NextcloudContext) -> Response:
    found = await _visitor(request, nc)
    if isinstance(found, Response):
        return found
    share, visitor = found
    token = share.token or ""
    if Permission.READ not in Permission.parse(share.permissions):
        return _page("Upload files", _drop_form(token))
    try:
        path = DavPath.parse(request.query_params.get("path", "/"))
        entry, children = await nc.services.files.list_folder(visitor, path)
    except EcrinError:
        return _page("Not found", "<p>Nothing here.</p>", 404)
    if not entry.node.is_folder:
        href = f"/s/{quote(token)}/download?path={quote(str(path))}"
        return _page(
            entry.name,
            f'<p><a href="{href}" download>Download {escape(entry.name)}'
            f"</a> ({entry.node.size} bytes)</p>",
        )
    items = []
    for child in children:
        child_path = quote(str(path.child(child.name)))
        if child.node.is_folder:
            items.append(
                f'<li><a href="/s/{quote(token)}?path={child_path}">{escape(child.name)}/</a></li>'
            )
        else:
            items.append(
                f'<li><a href="/s/{quote(token)}/download?path={child_path}" download>'
                f"{escape(child.name)}</a> ({child.node.size} bytes)</li>"
            )
    listing = "<ul>" + "".join(items) + "</ul>" if items else "<p>This folder is empty.</p>"
    return _page(entry.name or "Shared folder", listing)


def _drop_form(token: str) -> str:
    target = f"/public.php/dav/files/{quote(token)}/"
    return (
        "<p>Files you send here are delivered to the owner of this link. "
        "You cannot see what others sent.</p>"
        '<label for="files">Files</label> <input id="files" type="file" multiple> '
        '<button id="send" type="button">Send</button><p id="status" role="status"></p>'
        "<script>document.getElementById('send').onclick=async()=>{"
        "const s=document.getElementById('status');"
        "for(const f of document.getElementById('files').files){"
        f"const r=await fetch('{target}'+encodeURIComponent(f.name),"
        "{method:'PUT',body:f,credentials:'same-origin'});"
        "s.textContent=(r.ok?'Sent: ':'Failed: ')+f.name;}};</script>"
    )


async def unlock(request: Request, nc: NextcloudContext) -> Response:
    token = request.path_params["token"]
    body = (await read_small_body(request)).decode("utf-8", "replace")
    password = parse_qs(body).get("password", [""])[0]
    client = request.client.host if request.client else ""
    try:
        await nc.services.sharing.open_link(token, password, client)
        share = await nc.services.sharing.link_share(token)
    except EcrinError as error:
        if error.status == 404:
            return _page("Link not found", "<p>This link does not exist.</p>", 404)
        return _password_form(token, error.message, error.status)
    response = RedirectResponse(f"/s/{quote(token)}", status_code=303)
    if share.password_hash:
        response.set_cookie(COOKIE, link_proof(share), httponly=True, samesite="strict")
    return response


async def download(request: Request, nc: NextcloudContext) -> Response:
    found = await _visitor(request, nc)
    if isinstance(found, Response):
        return found
    _, visitor = found
    try:
        path = DavPath.parse(request.query_params.get("path", "/"))
        opened = await nc.services.files.open(visitor, path)
    except EcrinError:
        return _page("Not found", "<p>Nothing here.</p>", 404)
    node = opened.node
    if node.is_folder:
        return _page("Not a file", "<p>Folders cannot be downloaded as one file yet.</p>", 400)
    name = node.name or "download"
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    headers = {
        "content-length": str(node.size),
        "content-type": content_type_of(node),
        "content-disposition": f'attachment; filename="{ascii_name}"; '
        f"filename*=UTF-8''{quote(name)}",
        "x-content-type-options": "nosniff",
    }
    return StreamingResponse(nc.services.files.read_opened(opened, 0, node.size), headers=headers)


def routes(nc: NextcloudContext) -> list[BaseRoute]:
    async def show_endpoint(request: Request) -> Response:
        return await show(request, nc)

    async def unlock_endpoint(request: Request) -> Response:
        return await unlock(request, nc)

    async def download_endpoint(request: Request) -> Response:
        return await download(request, nc)

    return [
        Route("/s/{token}", show_endpoint, methods=["GET"]),
        Route("/s/{token}", unlock_endpoint, methods=["POST"]),
        Route("/s/{token}/download", download_endpoint, methods=["GET"]),
    ]
