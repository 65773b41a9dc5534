"""The administrator console in a real browser (Debian's Chromium through Playwright), against
``yrdgw console`` subprocesses and a real gateway: what an administrator clicks is checked back
through the gRPC API, where each decision must be recorded and signed with the administrator's
key."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from yrd.interop.v1 import (
    recognition_pb2,
    reconciliation_pb2,
    records_pb2,
    transfer_pb2,
)

from gateway.client import GatewayClient, envelope_signature_ok
from gateway.security.identity import Role
from gateway.security.pki import load_signing_public_key
from tests.console.conftest import Console, Gateway

pytestmark = pytest.mark.browser

SH, JS, ZJ, AH = "310000", "320000", "330000", "340000"
JS_PV = "regions/320000/methodologies/JS-FFX-GF-001"
JS_PROJECT = "regions/320000/projects/JS-XM-2024-0456"
ZJ_PV = "regions/330000/methodologies/1526163848812433408"
AH_PV = "regions/340000/methodologies/AH-FFX-PV-2024-02"
AH_PROJECT = "regions/340000/projects/AH-XM-2024-0031"

ConsoleFor = Callable[[str, str], Console]
NewPage = Callable[[], Page]


def login(new_page: NewPage, console: Console) -> Page:
    """A browser page logged in to the console with the token it printed."""
    page = new_page()
    response = page.goto(console.url)
    assert response is not None and response.ok
    assert "token=" not in page.url  # the token leaves the address bar for a session cookie
    return page


def request_from(gateway: Gateway, region: str, subject: str, version: str = "") -> str:
    """A registry asks Shanghai to recognise ``subject``; the recognition's id."""
    (rec,) = gateway.client(region).request_recognition(subject, version=version, regions=[SH])
    assert rec.state == recognition_pb2.RECOGNITION_STATE_REQUESTED
    return rec.name.removeprefix("recognitions/")


def fits_width(page: Page) -> bool:
    """No horizontal scrolling at the page's viewport width."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def assert_signed_by(gateway: Gateway, decision: recognition_pb2.Decision, admin: str) -> None:
    """The decision carries an envelope signed by ``admin``'s own key, registered at the gateway
    under that administrator, over exactly this decision."""
    public = load_signing_public_key(gateway.pki.admin(SH, admin).signing_public_key)
    assert envelope_signature_ok(decision.envelope, public)
    keys = {k.key_id: k for k in gateway.client(SH).list_signing_keys(SH)}
    assert keys[decision.envelope.key_id].owner == f"admin/{admin}"
    assert keys[decision.envelope.key_id].public_key == public


def test_pages_need_the_token(console_for: ConsoleFor, new_page: NewPage) -> None:
    console = console_for(SH, "admin-a")
    page = new_page()
    for path in ("/", "/in-force", "/transfers", "/recognitions/abc", "/?token=wrong"):
        response = page.goto(console.base + path)
        assert response is not None and response.status == 403, path
        expect(page.locator("h1")).to_contain_text("403")
    refused = page.request.post(
        console.base + "/recognitions/abc/approve", form={"comment": "x", "csrf_token": "x"}
    )
    assert refused.status == 403

    page = login(new_page, console)
    expect(page.locator("h1")).to_contain_text("待上海市（310000）决定的互认申请")
    cookies = page.context.cookies()
    assert len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    response = page.goto(console.base + "/in-force")
    assert response is not None and response.status == 200
    assert response.headers["x-frame-options"] == "DENY"
    # A page of another site that resolves its own name to 127.0.0.1 (DNS rebinding) is refused.
    rebound = page.request.get(console.base + "/", headers={"Host": "evil.example"})
    assert rebound.status == 403


def test_approve_in_the_browser_is_signed_and_reaches_quorum(
    gateway: Gateway, console_for: ConsoleFor, new_page: NewPage
) -> None:
    rid = request_from(gateway, JS, JS_PV, "1")
    page = login(new_page, console_for(SH, "admin-a"))
    row = page.locator(f'#inbox tr[data-recognition="recognitions/{rid}"]')
    expect(row).to_contain_text("江苏省（320000）")
    expect(row).to_contain_text("0 / 2")
    assert fits_width(page)
    row.get_by_role("link").click()

    grid = page.locator('#assessment tr[data-param="EF_grid"]')
    expect(grid).to_have_class("differs")
    expect(grid.locator("td.subject")).to_have_text("0.5978")
    expect(grid.locator("td.counterpart")).to_have_text("0.42")
    expect(grid).to_contain_text("kgCO2/kWh")
    expect(grid).to_contain_text("4.2 tCO2/10^4kWh")  # as Shanghai filed it, normalised beside
    expect(grid).to_contain_text("不同")
    expect(page.locator("#suggested-ratio")).to_contain_text("300/427")
    expect(page.locator("#quorum")).to_contain_text("已批准 0 / 法定人数 2")
    assert fits_width(page)

    comment = "电网排放因子差异（0.5978 对 0.42）已审阅，同意按 300/427 互认。"
    page.fill("#comment", comment)
    page.click("#approve")
    expect(page.locator(".flash.ok")).to_contain_text("已签署并提交批准（1/2）")
    expect(page.locator("#quorum")).to_contain_text("已批准 1 / 法定人数 2")
    expect(page.locator('#decisions tr[data-admin="admin-a"]')).to_contain_text("✓ 已验证")
    expect(page.locator("#decide-form")).to_have_count(0)  # one administrator counts once

    rec = gateway.client(SH).get_recognition(f"recognitions/{rid}")
    assert rec.state == recognition_pb2.RECOGNITION_STATE_REQUESTED
    (decision,) = rec.decisions
    assert (decision.region, decision.admin, decision.verdict, decision.comment) == (
        SH,
        "admin-a",
        recognition_pb2.VERDICT_APPROVE,
        comment,
    )
    assert_signed_by(gateway, decision, "admin-a")

    # The second administrator, in English, completes the quorum.
    page_b = login(new_page, console_for(SH, "admin-b"))
    page_b.click("#lang-en")
    expect(page_b.locator("h1")).to_contain_text("Recognition requests awaiting Shanghai")
    page_b.goto(f"{console_for(SH, 'admin-b').base}/recognitions/{rid}")
    expect(page_b.locator("#quorum")).to_contain_text("1 of 2 approvals")
    page_b.fill("#comment", "Agreed.")
    page_b.click("#approve")
    expect(page_b.locator(".flash.ok")).to_contain_text("quorum reached")
    expect(page_b.locator("#state")).to_have_text("in force")

    rec = gateway.client(SH).get_recognition(f"recognitions/{rid}")
    assert rec.state == recognition_pb2.RECOGNITION_STATE_APPROVED
    assert [d.admin for d in rec.decisions] == ["admin-a", "admin-b"]
    assert_signed_by(gateway, rec.decisions[1], "admin-b")
    page_b.click("text=Recognitions in force")
    expect(page_b.locator(f'#in-force tr[data-recognition="recognitions/{rid}"]')).to_be_visible()


def test_reject_in_the_browser_is_signed(
    gateway: Gateway, console_for: ConsoleFor, new_page: NewPage
) -> None:
    rid = request_from(gateway, JS, JS_PROJECT)
    console = console_for(SH, "admin-a")
    page = login(new_page, console)
    page.goto(f"{console.base}/recognitions/{rid}")
    expect(page.locator('#assessment tr[data-param="EF_grid"] td.subject')).to_have_text("0.5978")
    page.fill("#comment", "项目所用方法学尚未在本市备案。")
    page.click("#reject")
    expect(page.locator(".flash.ok")).to_contain_text("已签署并提交拒绝")
    expect(page.locator("#state")).to_have_text("已拒绝")

    rec = gateway.client(SH).get_recognition(f"recognitions/{rid}")
    assert rec.state == recognition_pb2.RECOGNITION_STATE_REJECTED
    (decision,) = rec.decisions
    assert decision.verdict == recognition_pb2.VERDICT_REJECT
    assert decision.comment == "项目所用方法学尚未在本市备案。"
    assert_signed_by(gateway, decision, "admin-a")
    page.goto(console.base + "/")
    expect(page.locator(f'tr[data-recognition="recognitions/{rid}"]')).to_have_count(0)


def test_revoke_in_the_browser_after_confirmation_is_signed(
    gateway: Gateway, console_for: ConsoleFor, new_page: NewPage
) -> None:
    rid = request_from(gateway, AH, AH_PV, "1")
    console = console_for(SH, "admin-a")
    # Approved outside the console, by the same administrators through the SDK: the console's
    # signer chain is then stale, and must resynchronise by itself.
    for admin in ("admin-a", "admin-b"):
        gateway.client(SH, Role.ADMIN, admin).approve_recognition(f"recognitions/{rid}", "同意")

    page = login(new_page, console)
    page.click("text=生效互认")
    row = page.locator(f'#in-force tr[data-recognition="recognitions/{rid}"]')
    row.get_by_role("link", name="撤销…").click()
    expect(page.locator("h1")).to_have_text("确认撤销互认")
    expect(page.locator("#revoke-warning")).to_contain_text("尚未接受的转让将在接受时失败")
    page.click("#confirm-revoke")  # an empty reason: the browser does not submit the form
    assert page.url.endswith(f"/recognitions/{rid}/revoke")
    assert gateway.client(SH).get_recognition(f"recognitions/{rid}").state == (
        recognition_pb2.RECOGNITION_STATE_APPROVED
    )
    page.fill("#reason", "方法学参数复核")
    page.click("#confirm-revoke")
    expect(page.locator(".flash.ok")).to_contain_text("互认已撤销")
    expect(page.locator("#state")).to_have_text("已撤销")
    expect(page.locator("#revoke-reason")).to_have_text("方法学参数复核")

    rec = gateway.client(SH).get_recognition(f"recognitions/{rid}")
    assert rec.state == recognition_pb2.RECOGNITION_STATE_REVOKED
    assert rec.revoke_reason == "方法学参数复核"
    # Signed: the audit entry of the revocation names the envelope, and that envelope is the
    # last one the gateway accepted (after checking its signature) from admin-a's key.
    audit = [e for e in gateway.client(SH).audit_entries() if e.subject == rec.name]
    revoked = [e for e in audit if e.kind == "recognition.revoked"]
    assert [(e.actor_region, e.actor) for e in revoked] == [(SH, "admin/admin-a")]
    public = load_signing_public_key(gateway.pki.admin(SH, "admin-a").signing_public_key)
    (key,) = [k for k in gateway.client(SH).list_signing_keys(SH) if k.public_key == public]
    assert json.loads(revoked[0].detail)["envelope_hash"] == key.last_envelope_hash.hex()


def test_a_form_post_without_the_csrf_token_is_refused(
    gateway: Gateway, console_for: ConsoleFor, new_page: NewPage
) -> None:
    rid = request_from(gateway, ZJ, ZJ_PV, "1")
    console = console_for(SH, "admin-a")
    page = login(new_page, console)  # a session cookie, but no form of the console
    url = f"{console.base}/recognitions/{rid}/approve"
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert csrf
    for form, headers in (
        ({"comment": "forged"}, {}),
        ({"comment": "forged", "csrf_token": "not-the-token"}, {}),
        ({"comment": "forged", "csrf_token": csrf}, {"Origin": "http://evil.example"}),
    ):
        response = page.request.post(url, form=form, headers=headers, max_redirects=0)
        assert response.status == 403
        assert "CSRF" in response.text()
    assert not gateway.client(SH).get_recognition(f"recognitions/{rid}").decisions

    # The same post with the session's token goes through: only the token was missing.
    response = page.request.post(url, form={"comment": "审阅", "csrf_token": csrf}, max_redirects=0)
    assert response.status == 303
    (decision,) = gateway.client(SH).get_recognition(f"recognitions/{rid}").decisions
    assert decision.admin == "admin-a" and decision.comment == "审阅"


def test_gateway_refusals_are_shown_as_messages(
    gateway: Gateway, console_for: ConsoleFor, new_page: NewPage
) -> None:
    rid = request_from(gateway, AH, AH_PROJECT)
    a, b = console_for(SH, "admin-a"), console_for(SH, "admin-b")
    detail = f"/recognitions/{rid}"
    a1 = login(new_page, a)
    a2 = a1.context.new_page()
    b1 = login(new_page, b)
    b2 = b1.context.new_page()
    for page, console in ((a1, a), (a2, a), (b1, b), (b2, b)):
        page.goto(console.base + detail)
        page.fill("#comment", "同意")

    a1.click("#approve")
    expect(a1.locator(".flash.ok")).to_be_visible()
    a2.click("#approve")  # a page loaded before the first approval
    expect(a2.locator(".flash.error")).to_have_text("您已对此申请作出过决定；每位管理员只计一次。")

    b1.click("#approve")
    expect(b1.locator("#state")).to_have_text("生效")
    b2.click("#approve")  # the quorum was reached meanwhile
    expect(b2.locator(".flash.error")).to_contain_text("此互认当前为「生效」")
    expect(b2.locator(".flash.error")).to_contain_text("可能已达到法定人数")

    # Zhejiang's administrator is not offered the decision, and the gateway refuses it anyway.
    zj = console_for(ZJ, "admin-a")
    z = login(new_page, zj)
    z.goto(zj.base + detail)
    csrf = z.locator('meta[name="csrf-token"]').get_attribute("content")
    posted = z.request.post(
        f"{zj.base}{detail}/approve",
        form={"comment": "不是我的", "csrf_token": csrf or ""},
        max_redirects=0,
    )
    assert posted.status == 303
    z.goto(zj.base + detail)
    expect(z.locator(".flash.error")).to_have_text(
        "只有上海市（310000）的管理员可以对此作出决定，网关拒绝了您的决定。"
    )
    missing = z.goto(zj.base + "/recognitions/0000000000000000-310000")
    assert missing is not None and missing.status == 404
    expect(z.locator(".flash.error")).to_have_text("找不到该互认申请。")

    for page in (a2, b2, z):
        assert "Traceback" not in page.content()
    assert [
        d.admin for d in gateway.client(SH).get_recognition(f"recognitions/{rid}").decisions
    ] == [
        "admin-a",
        "admin-b",
    ]


def _submit_holdings_and_reconcile(gateway: Gateway) -> reconciliation_pb2.ReconciliationReport:
    """Shanghai's registry submits a snapshot missing one block it holds, and an administrator
    runs the reconciliation."""
    sh = gateway.client(SH)
    held = sh.holdings(SH, records_pb2.UNIT_BLOCK_STATE_ACTIVE)
    sh.submit_holdings(
        dt.datetime.now(dt.UTC),
        [
            reconciliation_pb2.HeldBlock(
                origin_region=b.origin_region, serials=b.serials, state=b.state
            )
            for b in held[1:]
        ],
    )
    return gateway.client(SH, Role.ADMIN, "admin-b").run_reconciliation(SH)


def test_transfers_and_the_last_reconciliation_report(
    gateway: Gateway, console_for: ConsoleFor, new_page: NewPage
) -> None:
    ah, zj, sh = gateway.client(AH), gateway.client(ZJ), gateway.client(SH)
    sent = {}
    for registry, origin in ((ah, AH), (zj, ZJ)):
        block = registry.holdings(origin)[0]
        start = block.serials.start
        sent[origin] = registry.propose_transfer(
            f"console-{origin}", SH, origin=origin, ranges=[(start, start + 1_499_999)]
        )
    sh.accept_transfer(sent[AH].name)

    report = None
    if hasattr(GatewayClient, "list_reconciliation_reports"):
        report = _submit_holdings_and_reconcile(gateway)

    console = console_for(SH, "admin-a")
    page = login(new_page, console)
    page.click("text=转让与对账")
    done = page.locator(f'#transfers tr[data-transfer="{sent[AH].name}"]')
    expect(done).to_contain_text("安徽省（340000）")
    expect(done).to_contain_text("1.5 t")
    expect(done).to_contain_text("已完成")
    pending = page.locator(f'#transfers tr[data-transfer="{sent[ZJ].name}"]')
    expect(pending).to_contain_text("待接受")
    assert gateway.client(SH).get_transfer(sent[ZJ].name).state == (
        transfer_pb2.TRANSFER_STATE_PROPOSED
    )
    assert fits_width(page)

    if report is None:  # the gateway does not serve reconciliation reports yet
        expect(page.locator("#no-report")).to_have_text("尚无对账报告。")
        return
    expect(page.locator("#report")).to_contain_text(report.name)
    if report.discrepancies:
        expect(page.locator("#discrepancies tbody tr")).to_have_count(len(report.discrepancies))
    else:
        expect(page.locator("#report")).to_contain_text("未发现差异。")


def test_federation_status_page_shows_every_region_and_its_lag(
    gateway: Gateway, console_for: ConsoleFor, new_page: NewPage
) -> None:
    # Every region has read the feed but Anhui; then Zhejiang's and Anhui's registries read again.
    for region in (SH, JS, ZJ):
        assert list(gateway.client(region).subscribe())
    reply = gateway.client(SH, Role.ADMIN, "admin-a").federation_status()
    page = login(new_page, console_for(SH, "admin-a"))
    page.click("text=联盟状态")
    expect(page.locator("#federation tbody tr")).to_have_count(4)
    for r in reply.regions:
        row = page.locator(f'#federation tr[data-region="{r.region}"]')
        if r.HasField("subscriber"):
            lag = f"{r.subscriber.lag_records} / "
            expect(row.locator(".lag")).to_contain_text(lag)
        else:
            expect(row).to_contain_text("从未订阅")
    expect(page.locator(f'#federation tr[data-region="{SH}"] .lag')).to_contain_text("0 / 0")
