"""Every request but `/healthz` needs an identity: a bearer token or a session cookie.

A one-time login link (`/login?token=...`) is traded for a session cookie (HttpOnly, SameSite=Strict);
the access log never records query strings, so the link's secret stays out of logs.
"""

from __future__ import annotations

from aiohttp import web

from infra.settings import WebSettings
from web import identities
from web.identities import Identity
from web.member_tokens import MemberStateTokens
from web.problems import Handler, ProblemError
from web.state import POOL, SETTINGS

SESSION_COOKIE = "alcance_session"
IDENTITY = web.RequestKey("identity", Identity)
# Set when member states' JWTs are configured (`ALCANCE_DIRECTORY__JWT_*`; see web.directory).
MEMBER_TOKENS = web.AppKey("member_tokens", MemberStateTokens)
# Paths served without an identity: liveness, the login exchange itself, and static assets (no data).
PUBLIC_PATHS = frozenset({"/healthz", "/login", "/login/oidc", "/login/oidc/callback"})
PUBLIC_PREFIXES = ("/static/",)


def unauthorised(detail: str) -> ProblemError:
    """The 401 problem, with the scheme a client should use."""
    error = ProblemError(401, "Unauthorized", detail)
    error.headers["WWW-Authenticate"] = 'Bearer realm="alcance"'
    return error


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the caller's identity into `request["identity"]`, or answer 401."""
    if request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    pool = request.app[POOL]
    header = request.headers.get("Authorization", "")
    found: Identity | None = None
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise unauthorised("the Authorization header must be 'Bearer <token>'")
        member_tokens = request.app.get(MEMBER_TOKENS)
        if member_tokens is not None and secret.count(".") == 2:
            # A JWT: a member state's access token from the configured authorisation server.
            found = await member_tokens.identity(secret.strip())
        else:
            found = await identities.identity_for_token(pool, secret.strip())
        if found is None:
            raise unauthorised("the token is unknown, revoked or expired")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            idle_s = request.app[SETTINGS].web.session_idle_s
            found = await identities.identity_for_session(pool, cookie, idle_s=idle_s)
        if found is None:
            raise unauthorised(
                "sign in: send 'Authorization: Bearer <token>' (alcance token create), or open the "
                "login link alcance serve printed"
            )
    request[IDENTITY] = found
    return await handler(request)


def identity_of(request: web.Request) -> Identity:
    """The identity the middleware resolved for `request`."""
    found: Identity = request[IDENTITY]
    return found


def require_internal(request: web.Request) -> None:
    """403 for external roles: the table asked for is not a published one."""
    identity = identity_of(request)
    if identity.audience == "external":
        raise ProblemError(403, "Forbidden", f"role {identity.role} reads published tables only")


async def login(request: web.Request) -> web.StreamResponse:
    """Trade a one-time login link for a session cookie, then go to the overview."""
    secret = request.query.get("token", "")
    settings: WebSettings = request.app[SETTINGS].web
    session = await identities.exchange_login_link(request.app[POOL], secret, max_s=settings.session_max_s)
    if session is None:
        raise unauthorised("this login link is unknown, used already or expired; ask for a new one")
    cookie, _expires_at = session
    response = web.Response(status=303, headers={"Location": "/"})
    set_session_cookie(response, cookie, settings)
    # The link's secret must not linger in the browser's history or a proxy's cache.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def set_session_cookie(response: web.StreamResponse, value: str, settings: WebSettings) -> None:
    """Set the session cookie: HttpOnly, SameSite=Strict, Secure when served over HTTPS."""
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(settings.session_max_s),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=settings.cookie_secure,
    )


async def logout(request: web.Request) -> web.StreamResponse:
    """End the caller's browser session."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await identities.close_session(request.app[POOL], cookie)
    response = web.Response(text="signed out\n")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def add_routes(app: web.Application) -> None:
    """Register the sign-in and sign-out routes."""
    app.router.add_get("/login", login)
    app.router.add_post("/logout", logout)
