"""The dashboard as its users meet it (Streamlit AppTest, in-process, on a real SQLite store): signing in,
who sees what, and whether the numbers are the store's."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import update
from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto
from streamlit.testing.v1 import AppTest

from api.auth.models import User
from dashboard.access import BAD_CREDENTIALS, BUYER_REFUSED
from dashboard.sections.sign_in import EMAIL_KEY, PASSWORD_KEY
from tests.dashboard.conftest import PLATFORM, SHOP_A, World
from tests.helpers import PASSWORD, Api

# AppTest runs the app in this process, against a file: SQLite is the store here; the reads on
# PostgreSQL are tested in test_store_reads.py.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

Dashboard = Callable[[], AppTest]


def sign_in(at: AppTest, email: str, password: str = PASSWORD) -> AppTest:
    at.text_input(key=EMAIL_KEY).input(email)
    at.text_input(key=PASSWORD_KEY).input(password)
    at.button[0].click()
    return at.run()


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def deltas(at: AppTest) -> dict[str, str]:
    return {m.label: m.delta for m in at.metric}


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def test_sign_in_page_renders_and_nothing_else(dashboard: Dashboard) -> None:
    at = dashboard().run()
    no_exception(at)
    assert titles(at) == ["Crypto Store dashboard"]
    assert [t.label for t in at.text_input] == ["Email", "Password"]
    assert at.text_input(key=PASSWORD_KEY).proto.type == TextInputProto.PASSWORD  # masked
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.metric and not at.dataframe


@pytest.mark.parametrize("who", ["wrong_password", "unknown_email", "inactive"])
def test_bad_credentials_show_one_error(dashboard: Dashboard, api: Api, world: World, who: str) -> None:
    email, password = world.analyst.email, PASSWORD
    if who == "wrong_password":
        password = "not the password"
    elif who == "unknown_email":
        email = "nobody@example.com"
    else:
        _deactivate(api, world.analyst.id)
    at = sign_in(dashboard().run(), email, password)
    no_exception(at)
    assert [e.value for e in at.error] == [BAD_CREDENTIALS]
    assert titles(at) == ["Crypto Store dashboard"] and not at.metric


def test_buyer_is_refused(dashboard: Dashboard, world: World) -> None:
    at = sign_in(dashboard().run(), world.buyer1.email)
    no_exception(at)
    assert [e.value for e in at.error] == [BUYER_REFUSED]
    assert "Overview" not in titles(at) and not at.metric


def test_analyst_sees_every_section_and_the_live_numbers(dashboard: Dashboard, world: World) -> None:
    at = sign_in(dashboard().run(), world.analyst.email.upper())  # emails match whatever the case
    no_exception(at)
    assert titles(at) == ["Overview"]
    # The marts are not built in this store (no pipeline has run): the page says what to do.
    assert at.warning and "run the pipeline" in at.warning[0].value
    assert at.sidebar.button(key="sign_out").label == "Sign out"

    for page, title in [
        ("analytics", "Analytics"),
        ("blockchain", "Blockchain"),
        ("ai", "AI Insights"),
        ("security", "Security"),
        ("system", "System"),
    ]:
        at.switch_page(f"sections/{page}.py").run()
        no_exception(at)
        assert titles(at) == [title]

    at.switch_page("sections/realtime.py").run()
    no_exception(at)
    assert titles(at) == ["Real-time"]
    live = metrics(at)
    assert live["Online users"] == str(world.people)  # each signed in through the API
    assert live["Orders, 5 min"] == live["Orders, 60 min"] == str(PLATFORM.orders)
    assert live["Messages, 5 min"] == live["Messages, 60 min"] == str(PLATFORM.messages)
    assert live["Paid orders today"] == str(PLATFORM.paid)
    assert live["Revenue today USDT"] == "60.50" and live["Revenue today BTC"] == "0.001234"
    feed = at.dataframe[0].value
    assert {"order.placed", "order.paid", "order.cancelled", "message.sent", "product.viewed"} <= set(
        feed["type"]
    )
    assert {str(world.shop_a["id"]), str(world.shop_b["id"])} <= set(feed["shop"])
    assert world.buyer1.username in set(feed["actor"])
    assert [b.proto.label for b in at.get("download_button")] == ["CSV"]


def test_seller_sees_only_their_shop(dashboard: Dashboard, world: World) -> None:
    at = sign_in(dashboard().run(), world.seller_a.email)
    no_exception(at)
    assert titles(at) == ["Overview"]
    # Security and System are platform sections: a shop owner cannot open them.
    with pytest.raises(ValueError, match="Could not find a navigation page") as refused:
        at.switch_page("sections/security.py")
    offered = str(refused.value).split("Known pages: ")[1]
    assert "security.py" not in offered and "system.py" not in offered
    assert all(f"{page}.py" in offered for page in ("overview", "analytics", "blockchain", "ai", "realtime"))
    at.switch_page("sections/realtime.py").run()
    no_exception(at)
    live = metrics(at)
    assert "Online users" not in live  # a platform number
    assert live["Active on your shops"] == "2"
    assert live["Orders, 5 min"] == str(SHOP_A.orders)
    assert live["Messages, 5 min"] == str(SHOP_A.messages)
    assert live["Paid orders today"] == str(SHOP_A.paid)
    assert live["Revenue today USDT"] == "50.00"
    feed = at.dataframe[0].value
    assert set(feed["shop"]) == {str(world.shop_a["id"])}
    assert "message.sent" in set(feed["type"]) and "order.placed" in set(feed["type"])


def test_deactivated_account_is_signed_out_on_the_next_rerun(
    dashboard: Dashboard, api: Api, world: World
) -> None:
    at = sign_in(dashboard().run(), world.analyst.email)
    assert titles(at) == ["Overview"]
    _deactivate(api, world.analyst.id)
    at.run()
    no_exception(at)
    assert titles(at) == ["Crypto Store dashboard"]
    assert at.warning and "no longer" in at.warning[0].value


def test_sign_out(dashboard: Dashboard, world: World) -> None:
    at = sign_in(dashboard().run(), world.analyst.email)
    at.sidebar.button(key="sign_out").click().run()
    no_exception(at)
    assert titles(at) == ["Crypto Store dashboard"] and not at.metric


def _deactivate(api: Api, user_id: int) -> None:
    with api.store.write() as db:
        db.info["silent_write_ok"] = True  # a test fixture, not a domain change
        db.execute(update(User).where(User.id == user_id).values(is_active=False))
        db.commit()
