"""The console's web application: server-rendered pages (Starlette + Jinja2, no script), guarded
by the start-up token and a session cookie, with a CSRF token on every form.

Every page reads the gateway through the administrator's ConsoleBackend; every form posts back
here, is signed by the backend and answered with a redirect that carries a one-shot message
(post/redirect/get), so a refused decision shows the gateway's reason on the page.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.client import TransportError
from gateway.console.backend import ConsoleBackend
from gateway.console.i18n import describe_error, language, region_name, translate
from gateway.console.reports import REPORT_NAMES, ReportSource
from gateway.errors import DomainError

HERE = Path(__file__).parent
CHINA = dt.timezone(dt.timedelta(hours=8))
"""Times are shown in China Standard Time, where every administrator works."""
_RID = re.compile(r"[A-Za-z0-9_-]{1,128}")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
CASE_FILTERS = ("open", "distinct", "duplicate", "all")
"""The duplicates page's filters by case state."""
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    # The token is in the first URL: never send it on to another site, never cache pages.
    # ("no-referrer" would make Chromium send "Origin: null" with the console's own forms.)
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)


@dataclass
class Session:
    """One browser's session: its CSRF token, language and pending one-shot messages."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    lang: str = "zh"
    flashes: list[tuple[str, str]] = field(default_factory=list)
    """(kind, text) shown once on the next page: kind is "ok" or "error"."""


class SessionStore:
    """Sessions by their random cookie value, in memory (they end with the console)."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self) -> tuple[str, Session]:
        sid, session = secrets.token_urlsafe(32), Session()
        with self._lock:
            self._sessions[sid] = session
        return sid, session

    def get(self, sid: str) -> Session | None:
        with self._lock:
            return self._sessions.get(sid) if sid else None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _forbidden(lang: str | None, text_key: str) -> HTMLResponse:
    """A plain 403 page (no layout: it is also shown to browsers without a session, whose
    language is unknown: they get both)."""
    langs = (lang,) if lang else ("zh", "en")
    title = " / ".join(translate(x, "forbidden_title") for x in langs)
    texts = "".join(f'<p class="flash error">{translate(x, text_key)}</p>' for x in langs)
    body = (
        f'<!doctype html><html lang="{langs[0]}"><head><meta charset="utf-8"><title>403 {title}'
        f'</title><link rel="stylesheet" href="/static/console.css"></head><body>'
        f'<main class="page"><h1>403 {title}</h1>{texts}</main></body></html>'
    )
    return HTMLResponse(body, status_code=403)


class TokenGuard:
    """ASGI middleware: the start-up token opens a session (in the URL once, as Jupyter does,
    then a cookie); every other request without a live session gets 403.

    It also refuses Host headers other than the loopback names (DNS rebinding) and adds the
    security headers to every response.
    """

    def __init__(self, app: ASGIApp, token: str, store: SessionStore, cookie: str) -> None:
        self.app, self.token, self.store, self.cookie = app, token, store, cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        request = Request(scope)
        response = self._refusal_or_login(request)
        if response is not None:
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal_or_login(self, request: Request) -> Response | None:
        """The response that ends the request here (refusal or login), or None to go on."""
        if (request.url.hostname or "") not in LOCAL_HOSTS:
            return _forbidden(None, "forbidden_text")
        path = request.url.path
        if path.startswith("/static/"):
            return None
        given = request.query_params.get("token")
        if given is not None:
            if request.method != "GET" or not _same(given, self.token):
                return _forbidden(None, "forbidden_text")
            sid, _ = self.store.create()
            # The same page without the token, which leaves the address bar and the history.
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = path + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(target, 303)
            response.set_cookie(self.cookie, sid, httponly=True, samesite="strict", path="/")
            return response
        session = self.store.get(request.cookies.get(self.cookie, ""))
        if session is None:
            return _forbidden(None, "forbidden_text")
        request.scope.setdefault("state", {})["session"] = session
        return None


def _session(request: Request) -> Session:
    session: Session = request.scope["state"]["session"]
    return session


def _china_time(when: dt.datetime | None) -> str:
    return when.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if when is not None else "—"


def _tonnes(grams: int) -> str:
    """Integer grams as exact tonnes: 1_500_000 → "1.5 t"."""
    sign = "-" if grams < 0 else ""
    whole, part = divmod(abs(grams), 1_000_000)
    frac = f"{part:06d}".rstrip("0")
    return f"{sign}{whole:,}{'.' + frac if frac else ''} t"


def _grams(grams: int) -> str:
    """Integer grams with thousands separators: 310500000 → "310,500,000 g"."""
    return f"{grams:,} g"


def _ratio_decimal(ratio: tuple[int, int] | None) -> str:
    """A ratio's decimal value to four places, computed exactly on integers (half up)."""
    if ratio is None or ratio[1] <= 0:
        return ""
    n, d = ratio
    scaled = (abs(n) * 10_000 * 2 + d) // (2 * d)
    return f"{'-' if n < 0 else ''}{scaled // 10_000}.{scaled % 10_000:04d}"


def create_app(
    backend: ConsoleBackend,
    token: str,
    *,
    cookie: str | None = None,
    reports: ReportSource | None = None,
) -> ASGIApp:
    """The console for ``backend``'s administrator, opened by ``token``.

    ``cookie`` names the session cookie; by default it is unique to this console, since browsers
    share cookies between ports of 127.0.0.1 and two consoles must not log each other out.
    """
    store = SessionStore()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["china_time"] = _china_time
    env.filters["tonnes"] = _tonnes
    env.filters["ratio_decimal"] = _ratio_decimal
    env.filters["grams"] = _grams

    def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        session = _session(request)
        lang = session.lang
        flashes, session.flashes = session.flashes, []

        def t(key: str, **values: object) -> str:
            return translate(lang, key, **values)

        def region(code: str) -> str:
            return region_name(lang, code)

        html = env.get_template(template).render(
            t=t,
            region=region,
            lang=lang,
            me_region=backend.region,
            me_admin=backend.admin,
            csrf=session.csrf,
            flashes=flashes,
            path=request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def flash(request: Request, kind: str, key: str, **values: object) -> None:
        session = _session(request)
        session.flashes.append((kind, translate(session.lang, key, **values)))

    def refused(request: Request, exc: DomainError | TransportError) -> None:
        """Show the gateway's refusal (or failure) as a sentence on the next page."""
        session = _session(request)
        session.flashes.append(("error", describe_error(session.lang, exc)))

    def rid_of(request: Request) -> str:
        rid = str(request.path_params["rid"])
        if not _RID.fullmatch(rid):
            raise HTTPException(404)
        return rid

    async def checked_form(request: Request) -> FormData:
        """The posted form, once its CSRF token matches the session's (else 403)."""
        # Defence in depth: a browser names the page's origin on a post; another site's page
        # is refused even before the token is looked at ("null" carries no origin to compare).
        origin = request.headers.get("origin")
        if origin not in (None, "null", f"{request.url.scheme}://{request.url.netloc}"):
            raise HTTPException(403, "csrf_failed")
        form = await request.form()
        sent = form.get("csrf_token")
        if not isinstance(sent, str) or not _same(sent, _session(request).csrf):
            raise HTTPException(403, "csrf_failed")
        return form

    async def inbox(request: Request) -> Response:
        pending = await run_in_threadpool(backend.recognitions, "requested")
        return render(request, "inbox.html", nav="inbox", recognitions=pending)

    async def in_force(request: Request) -> Response:
        found = await run_in_threadpool(backend.recognitions, "approved")
        return render(request, "in_force.html", nav="in_force", recognitions=found)

    async def recognition(request: Request) -> Response:
        rec = await run_in_threadpool(backend.recognition, rid_of(request))
        return render(request, "recognition.html", nav="inbox", rec=rec)

    async def decide(request: Request, verdict: str) -> Response:
        rid = rid_of(request)
        form = await checked_form(request)
        comment = str(form.get("comment") or "").strip()
        back = RedirectResponse(f"/recognitions/{rid}", 303)
        if not comment:
            flash(request, "error", "comment_required")
            return back
        act = backend.approve if verdict == "approve" else backend.reject
        try:
            rec = await run_in_threadpool(act, rid, comment)
        except (DomainError, TransportError) as exc:
            refused(request, exc)
            return back
        if verdict == "reject":
            flash(request, "ok", "flash_rejected")
        elif rec.state == "approved":
            flash(request, "ok", "flash_approved_in_force")
        else:
            flash(
                request,
                "ok",
                "flash_approved",
                approvals=rec.approvals,
                required=rec.required_approvals,
            )
        return back

    async def approve(request: Request) -> Response:
        return await decide(request, "approve")

    async def reject(request: Request) -> Response:
        return await decide(request, "reject")

    async def revoke_page(request: Request) -> Response:
        rec = await run_in_threadpool(backend.recognition, rid_of(request))
        return render(request, "revoke.html", nav="in_force", rec=rec)

    async def revoke(request: Request) -> Response:
        rid = rid_of(request)
        form = await checked_form(request)
        reason = str(form.get("reason") or "").strip()
        if not reason:
            flash(request, "error", "reason_required")
            return RedirectResponse(f"/recognitions/{rid}/revoke", 303)
        try:
            await run_in_threadpool(backend.revoke, rid, reason)
        except (DomainError, TransportError) as exc:
            refused(request, exc)
            return RedirectResponse(f"/recognitions/{rid}", 303)
        flash(request, "ok", "flash_revoked")
        return RedirectResponse(f"/recognitions/{rid}", 303)

    async def duplicates(request: Request) -> Response:
        state = request.query_params.get("state", "open")
        if state not in CASE_FILTERS:
            raise HTTPException(404)
        found = await run_in_threadpool(backend.duplicate_cases, "" if state == "all" else state)
        return render(
            request,
            "duplicates.html",
            nav="duplicates",
            cases=found,
            state=state,
            filters=CASE_FILTERS,
        )

    async def duplicate(request: Request) -> Response:
        case = await run_in_threadpool(backend.duplicate_case, rid_of(request))
        return render(request, "duplicate.html", nav="duplicates", case=case)

    async def resolve_case(request: Request, resolution: str) -> Response:
        cid = rid_of(request)
        form = await checked_form(request)
        comment = str(form.get("comment") or "").strip()
        standing = str(form.get("standing") or "") if resolution == "DUPLICATE" else ""
        back = RedirectResponse(f"/duplicates/{cid}", 303)
        if not comment:
            flash(request, "error", "comment_required")
            return back
        try:
            case = await run_in_threadpool(backend.resolve_case, cid, resolution, comment, standing)
        except (DomainError, TransportError) as exc:
            refused(request, exc)
            return back
        if case.state == "open":
            flash(request, "ok", "flash_case_decided")
        else:
            flash(request, "ok", f"flash_case_{case.state}")
        return back

    async def resolve_distinct(request: Request) -> Response:
        return await resolve_case(request, "DISTINCT")

    async def resolve_duplicate(request: Request) -> Response:
        return await resolve_case(request, "DUPLICATE")

    async def transfers(request: Request) -> Response:
        moved = await run_in_threadpool(backend.transfers)
        report = await run_in_threadpool(backend.last_report)
        return render(request, "transfers.html", nav="transfers", transfers=moved, report=report)

    async def federation(request: Request) -> Response:
        doc = await run_in_threadpool(backend.federation_status)
        return render(request, "status.html", nav="status", federation=doc)

    async def reports_page(request: Request) -> Response:
        today = dt.datetime.now(CHINA).date()
        return render(
            request,
            "reports.html",
            nav="reports",
            available=reports is not None,
            names=REPORT_NAMES,
            since=today.replace(day=1).isoformat(),
            until=today.isoformat(),
        )

    async def report_download(request: Request) -> Response:
        if reports is None:
            raise HTTPException(404)
        q = request.query_params
        name, fmt = q.get("name", ""), q.get("format", "xlsx")
        try:
            since = dt.date.fromisoformat(q.get("since", ""))
            until = dt.date.fromisoformat(q.get("until", ""))
        except ValueError as exc:
            raise HTTPException(400) from exc
        if name not in REPORT_NAMES or fmt not in ("xlsx", "csv", "json") or until < since:
            raise HTTPException(400)
        data, media, filename = await run_in_threadpool(reports, name, since, until, fmt)
        return Response(
            data,
            media_type=media,
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )

    async def switch_language(request: Request) -> Response:
        _session(request).lang = language(str(request.path_params["lang"]))
        target = request.query_params.get("next", "/")
        # Only a path of this console: never an absolute or scheme-relative URL.
        if not target.startswith("/") or target.startswith("//") or "\\" in target:
            target = "/"
        return RedirectResponse(target, 303)

    async def gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError | TransportError)
        status = 502 if isinstance(exc, TransportError) else 409
        if isinstance(exc, DomainError) and exc.code.name == "NOT_FOUND":
            status = 404
        return render(
            request,
            "error.html",
            status=status,
            nav="",
            message=describe_error(_session(request).lang, exc),
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        session = request.scope.get("state", {}).get("session")
        if not isinstance(session, Session):  # only static files are served without one
            return HTMLResponse(translate("en", "not_found"), status_code=exc.status_code)
        lang = session.lang
        if exc.status_code == 403:
            return _forbidden(lang, exc.detail if exc.detail == "csrf_failed" else "forbidden_text")
        key = "not_found" if exc.status_code in (404, 405) else "internal_error"
        return render(
            request, "error.html", status=exc.status_code, nav="", message=translate(lang, key)
        )

    async def internal_error(request: Request, exc: Exception) -> Response:
        # Never a traceback on the page: Starlette re-raises the exception after this response,
        # and uvicorn writes it to the console's log for the operator.
        session = request.scope.get("state", {}).get("session")
        lang = session.lang if isinstance(session, Session) else "zh"
        return HTMLResponse(
            f"<!doctype html><title>500</title><p>{translate(lang, 'internal_error')}</p>",
            status_code=500,
        )

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        DomainError: gateway_error,
        TransportError: gateway_error,
        HTTPException: http_error,
        Exception: internal_error,
    }
    app = Starlette(
        routes=[
            Route("/", inbox),
            Route("/in-force", in_force),
            Route("/transfers", transfers),
            Route("/status", federation),
            Route("/reports", reports_page),
            Route("/reports/download", report_download),
            Route("/recognitions/{rid}", recognition),
            Route("/recognitions/{rid}/approve", approve, methods=["POST"]),
            Route("/recognitions/{rid}/reject", reject, methods=["POST"]),
            Route("/recognitions/{rid}/revoke", revoke_page, methods=["GET"]),
            Route("/recognitions/{rid}/revoke", revoke, methods=["POST"]),
            Route("/duplicates", duplicates),
            Route("/duplicates/{rid}", duplicate),
            Route("/duplicates/{rid}/distinct", resolve_distinct, methods=["POST"]),
            Route("/duplicates/{rid}/duplicate", resolve_duplicate, methods=["POST"]),
            Route("/lang/{lang}", switch_language),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        exception_handlers=handlers,
    )
    guarded: ASGIApp = TokenGuard(
        app, token, store, cookie or f"yrdgw-console-{secrets.token_hex(4)}"
    )
    return guarded
