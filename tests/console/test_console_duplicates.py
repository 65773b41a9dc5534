"""The duplicate cases pages in a real browser (Debian's Chromium through Playwright), against
``yrdgw console`` subprocesses and a real gateway: the plant filed in Qingpu and in Wujiang shown
side by side with its map, and resolved by both regions' administrators — each decision the
console signs is checked back through the gRPC API."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from yrd.interop.v1 import duplicate_service_pb2, duplicates_pb2, records_pb2

from gateway.client import envelope_signature_ok
from gateway.samples import (
    QINGPU_ISSUANCE,
    QINGPU_PROJECT,
    WUJIANG_ISSUANCE,
    WUJIANG_PROJECT,
    duplicate_pair_documents,
)
from gateway.security.identity import Role
from gateway.security.pki import load_signing_public_key
from tests.console.conftest import Console, Gateway
from tests.console.test_console import fits_width, login

pytestmark = pytest.mark.browser

SH, JS, ZJ = "310000", "320000", "330000"
ConsoleFor = Callable[[str, str], Console]
NewPage = Callable[[], Page]


@pytest.fixture(scope="module")
def case_id(gateway: Gateway) -> str:
    """The plant filed in Shanghai, then in Jiangsu (each issuing its 2024 output): the case's
    id."""
    pair = duplicate_pair_documents()
    for region in (SH, JS):
        results = gateway.client(region).publish(pair[region])
        assert all(r.accepted for r in results), [r.message for r in results]
    (case,) = gateway.client(SH).list_duplicate_cases(subject=WUJIANG_PROJECT)
    assert case.state == duplicates_pb2.DUPLICATE_CASE_STATE_OPEN
    return case.name.removeprefix("duplicateCases/")


def _signed_by(gateway: Gateway, decision: duplicates_pb2.CaseDecision) -> bool:
    """The decision's envelope is signed by its administrator's own key over this verdict."""
    files = gateway.pki.admin(decision.region, decision.admin)
    public = load_signing_public_key(files.signing_public_key)
    body = duplicate_service_pb2.CaseVerdict.FromString(decision.envelope.payload)
    return envelope_signature_ok(decision.envelope, public) and (
        body.resolution,
        body.comment,
    ) == (decision.resolution, decision.comment)


def test_a_case_side_by_side_with_its_map(
    gateway: Gateway, case_id: str, console_for: ConsoleFor, new_page: NewPage
) -> None:
    console = console_for(SH, "admin-a")
    page = login(new_page, console)
    page.click("text=重复登记")
    row = page.locator(f'#cases tr[data-case="duplicateCases/{case_id}"]')
    expect(row).to_contain_text(QINGPU_PROJECT)
    expect(row).to_contain_text(WUJIANG_PROJECT)
    expect(row).to_contain_text("确定")
    expect(row).to_contain_text("31.5 m")
    expect(row).to_contain_text("620.5 t")  # both issuances held: 310.5 t + 310 t
    assert fits_width(page)
    row.get_by_role("link").click()

    expect(page.locator("#state")).to_have_text("待决")
    sides = page.locator("#sides")
    expect(sides.locator('tr[data-field="credit_code"]')).to_have_class("same-key")
    expect(sides.locator('tr[data-field="grid_account"] td').nth(1)).to_have_text("0310118004567")
    filed = sides.locator('tr[data-field="site_filed"] td')
    expect(filed.nth(0)).to_contain_text("31.048120, 120.889350 WGS-84")
    expect(filed.nth(1)).to_contain_text("31.045964, 120.893771 GCJ-02")  # as Wujiang filed it
    matched = sides.locator('tr[data-field="site_wgs84"] td')
    expect(matched.nth(1)).to_contain_text("31.048270, 120.889630")
    expect(sides.locator('tr[data-field="capacity"]')).to_contain_text("400 kW")
    expect(page.locator("#distance")).to_have_text("31.5 m")
    expect(page.locator("#site-map")).to_be_visible()
    expect(page.locator("#map-scale")).to_have_attribute("data-metres", "50")
    expect(page.locator("#site-map circle.map-ring")).to_have_count(2)  # 50 and 100 m
    first = page.locator("#map-first").bounding_box()
    second = page.locator("#map-second").bounding_box()
    assert first and second and first["x"] != second["x"]
    held = page.locator("#issuances")
    for issuance in (QINGPU_ISSUANCE, WUJIANG_ISSUANCE):
        expect(held.locator(f'tr[data-issuance="{issuance}"]')).to_contain_text("冻结中")
    expect(page.locator('#quorums li[data-region="310000"]')).to_contain_text(
        "已决定 0 / 法定人数 2"
    )
    expect(page.locator('#quorums li[data-region="320000"]')).to_contain_text(
        "已决定 0 / 法定人数 1"
    )
    assert fits_width(page)

    # Zhejiang decides nothing here: no form, only the case.
    zj = console_for(ZJ, "admin-a")
    z = login(new_page, zj)
    z.goto(f"{zj.base}/duplicates/{case_id}")
    expect(z.locator("#not-deciding")).to_be_visible()
    expect(z.locator("#resolve-form")).to_have_count(0)
    z.goto(f"{zj.base}/duplicates")
    expect(z.locator("#cases")).to_have_count(0)  # no case with a side in Zhejiang


def test_both_regions_resolve_it_and_every_decision_is_signed(
    gateway: Gateway, case_id: str, console_for: ConsoleFor, new_page: NewPage
) -> None:
    name = f"duplicateCases/{case_id}"
    a = console_for(SH, "admin-a")
    page = login(new_page, a)
    page.goto(f"{a.base}/duplicates/{case_id}")
    expect(page.locator("#standing-first")).to_be_checked()  # the earlier one by default
    page.click("#resolve-duplicate")  # no comment: the browser does not send the form
    assert not gateway.client(SH).get_duplicate_case(name).decisions
    page.fill("#comment", "同一电网户号、同一业主：同一电站两地登记。")
    page.click("#resolve-duplicate")
    expect(page.locator(".flash.ok")).to_contain_text("已签署并提交决定")
    expect(page.locator("#state")).to_have_text("待决")
    expect(page.locator('#decisions tr[data-admin="310000/admin-a"]')).to_contain_text("✓ 已验证")
    expect(page.locator("#resolve-form")).to_have_count(0)  # one administrator decides once
    (decision,) = gateway.client(SH).get_duplicate_case(name).decisions
    assert (decision.region, decision.admin, decision.standing) == (SH, "admin-a", QINGPU_PROJECT)
    assert decision.resolution == duplicates_pb2.CASE_RESOLUTION_DUPLICATE
    assert _signed_by(gateway, decision)

    # A page loaded before that decision: the gateway's refusal comes back as a sentence.
    stale = page.context.new_page()
    b = console_for(SH, "admin-b")
    page_b = login(new_page, b)
    page_b.click("#lang-en")
    page_b.goto(f"{b.base}/duplicates/{case_id}")
    expect(page_b.locator('#quorums li[data-region="310000"]')).to_contain_text("1 decided of 2")
    page_b.fill("#comment", "Same grid account and owner.")
    page_b.click("#resolve-duplicate")
    expect(page_b.locator(".flash.ok")).to_contain_text("once the other deciding administrators")
    stale.goto(f"{a.base}/duplicates/{case_id}")
    csrf = stale.locator('meta[name="csrf-token"]').get_attribute("content")
    posted = stale.request.post(
        f"{a.base}/duplicates/{case_id}/distinct",
        form={"comment": "再次决定", "csrf_token": csrf or ""},
        max_redirects=0,
    )
    assert posted.status == 303
    stale.goto(f"{a.base}/duplicates/{case_id}")
    expect(stale.locator(".flash.error")).to_have_text(
        "您已对此案件作出过决定；每位管理员只计一次。"
    )

    # Jiangsu's administrator completes both quorums (through the SDK: no Jiangsu console here).
    js_admin = gateway.client(JS, Role.ADMIN, "admin-a")
    js_admin.resolve_duplicate_case(name, "DUPLICATE", "同一电站", standing=QINGPU_PROJECT)
    page_b.goto(f"{b.base}/duplicates/{case_id}")
    expect(page_b.locator("#state")).to_have_text("duplicate")
    expect(page_b.locator("#outcome")).to_contain_text(QINGPU_PROJECT)
    issuances = page_b.locator("#issuances")
    expect(issuances.locator(f'tr[data-issuance="{QINGPU_ISSUANCE}"]')).to_contain_text("released")
    expect(issuances.locator(f'tr[data-issuance="{WUJIANG_ISSUANCE}"]')).to_contain_text(
        "cancelled"
    )
    expect(page_b.locator("#decisions .sig.ok")).to_have_count(3)
    expect(page_b.locator("#resolve-form")).to_have_count(0)
    assert "Traceback" not in page_b.content() + stale.content()

    case = gateway.client(SH).get_duplicate_case(name)
    assert case.state == duplicates_pb2.DUPLICATE_CASE_STATE_DUPLICATE
    assert [(d.region, d.admin) for d in case.decisions] == [
        (SH, "admin-a"),
        (SH, "admin-b"),
        (JS, "admin-a"),
    ]
    assert all(_signed_by(gateway, d) for d in case.decisions)
    blocks = [b for b in gateway.client(JS).holdings(JS) if b.issuance == WUJIANG_ISSUANCE]
    assert blocks and {b.state for b in blocks} == {records_pb2.UNIT_BLOCK_STATE_CANCELLED}

    # The federation status page: nothing open or held any more.
    page_b.click("text=Federation status")
    expect(page_b.locator(f'#federation tr[data-region="{JS}"] .cases')).to_have_text("0")
