"""The browser page of login flow v2: a plain HTML form, no script, nothing from elsewhere."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

# The page may not be framed (clickjacking) and may only post back to this server.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:26em;margin:4em auto;padding:0 1em;"
    "color:#222}label{display:block;margin:1em 0 .3em}input{width:100%;padding:.5em;"
    "box-sizing:border-box}button{margin-top:1.5em;padding:.6em 1.2em}"
    ".error{color:#a00}"
)


def _page(title: str, body: str, status: int) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} - Ecrin</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def login_form(
    client_name: str, login: str = "", error: str = "", status: int = 200
) -> HTMLResponse:
    problem = f'<p class="error">{escape(error)}</p>' if error else ""
    body = (
        f"<p><strong>{escape(client_name)}</strong> asks for access to your files. "
        "Log in to grant it; it will get its own app password, which you can revoke at "
        "any time.</p>"
        f"{problem}"
        '<form method="post" autocomplete="on">'
        '<label for="user">User name</label>'
        f'<input id="user" name="user" autocomplete="username" required value="{escape(login)}">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        '<button type="submit">Log in and grant access</button></form>'
    )
    return _page("Connect a client", body, status)


def granted(client_name: str) -> HTMLResponse:
    body = (
        f"<p><strong>{escape(client_name)}</strong> is now connected to your account. "
        "You can close this window.</p>"
    )
    return _page("Access granted", body, 200)


def expired() -> HTMLResponse:
    body = "<p>This login link is unknown, already used or expired. Start again from the app.</p>"
    return _page("Link expired", body, 404)
