"""The dashboard as its users meet it (Streamlit AppTest, in-process, on a real SQLite store): signing in,
who sees what, and whether the numbers are the store's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update
from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto
from streamlit.testing.v1 import AppTest

from api.auth.models import User
from dashboard.access import BAD_CREDENTIALS, BUYER_REFUSED
from dashboard.sections.overview import DATES_KEY
from dashboard.sections.sign_in import EMAIL_KEY, PASSWORD_KEY
from tests.dashboard.conftest import PLATFORM, SHOP_A, World, place_order
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


def test_analyst_sees_both_pages_with_platform_numbers(dashboard: Dashboard, world: World) -> None:
    at = sign_in(dashboard().run(), world.analyst.email.upper())  # emails match whatever the case
    no_exception(at)
    assert titles(at) == ["Overview"]
    shown = metrics(at)
    assert shown["Orders"] == str(PLATFORM.orders)
    assert shown["Paid orders"] == str(PLATFORM.paid)
    assert shown["New users"] == str(world.people)
    assert shown["Active users"] == str(world.people)
    assert shown["Conversion"] == f"{PLATFORM.orders / PLATFORM.viewers:.1%}"  # 166.7%
    assert shown["Revenue USDT"] == "60.50"
    assert shown["Revenue BTC"] == "0.001234"
    # Nothing happened in the week before, so there is no change to show.
    assert set(deltas(at).values()) == {""}
    assert at.sidebar.button(key="sign_out").label == "Sign out"

    at.switch_page("sections/realtime.py").run()
    no_exception(at)
    assert titles(at) == ["Real-time"]
    live = metrics(at)
    assert live["Online users"] == str(world.people)  # each signed in through the API
    assert live["Orders, 5 min"] == live["Orders, 60 min"] == str(PLATFORM.orders)
    assert live["Messages, 5 min"] == live["Messages, 60 min"] == str(PLATFORM.messages)
    feed = at.dataframe[0].value
    assert {"order.placed", "order.paid", "order.cancelled", "message.sent", "product.viewed"} <= set(
        feed["type"]
    )
    assert {str(world.shop_a["id"]), str(world.shop_b["id"])} <= set(feed["shop"])
    assert world.buyer1.username in set(feed["actor"])


def test_seller_sees_only_their_shop(dashboard: Dashboard, world: World) -> None:
    at = sign_in(dashboard().run(), world.seller_a.email)
    no_exception(at)
    assert titles(at) == ["Overview"]
    shown = metrics(at)
    assert shown["Orders"] == str(SHOP_A.orders)
    assert shown["Paid orders"] == str(SHOP_A.paid)
    assert shown["New customers"] == str(SHOP_A.customers)
    assert "New users" not in shown
    assert shown["Active users"] == "2"  # the two buyers; the owner's own actions do not count
    assert shown["Conversion"] == f"{SHOP_A.orders / SHOP_A.viewers:.1%}"  # 150.0%
    assert shown["Revenue USDT"] == "50.00" and shown["Revenue BTC"] == "0.001234"

    at.switch_page("sections/realtime.py").run()
    no_exception(at)
    live = metrics(at)
    assert "Online users" not in live  # a platform number
    assert live["Active on your shops"] == "2"
    assert live["Orders, 5 min"] == str(SHOP_A.orders)
    assert live["Messages, 5 min"] == str(SHOP_A.messages)
    feed = at.dataframe[0].value
    assert set(feed["shop"]) == {str(world.shop_a["id"])}
    assert "message.sent" in set(feed["type"]) and "order.placed" in set(feed["type"])


def test_overview_compares_with_the_week_before(dashboard: Dashboard, api: Api, world: World) -> None:
    now = api.clock.now()
    api.clock.set(now - timedelta(days=7))  # a day of last week's range
    late = api.user()
    place_order(api, late, world.product_a_usdt["id"], 1, "pay")  # 25.00 USDT
    api.clock.set(now)

    at = sign_in(dashboard().run(), world.analyst.email)
    no_exception(at)
    assert metrics(at)["Orders"] == str(PLATFORM.orders)  # last week's order is not this week's
    change = deltas(at)
    assert change["Orders"] == "+400.0%"  # 5 against 1
    assert change["New users"] == "+400.0%"  # 5 against 1
    assert change["Revenue USDT"] == "+142.0%"  # 60.50 against 25.00
    assert change["Revenue BTC"] == ""  # nothing to compare with
    assert change["Conversion"] == ""  # nobody viewed a product last week


def test_date_range_comes_from_and_goes_to_the_url(dashboard: Dashboard, world: World) -> None:
    at = dashboard()
    # A shared link to a range before any of the data: it survives signing in.
    at.query_params["start"] = "2020-01-01"
    at.query_params["end"] = "2020-01-31"
    at.run()
    sign_in(at, world.analyst.email)
    no_exception(at)
    assert metrics(at)["Orders"] == "0"
    assert at.date_input(key=DATES_KEY).value == (date(2020, 1, 1), date(2020, 1, 31))
    assert at.query_params == {"start": "2020-01-01", "end": "2020-01-31"}

    today = datetime.now(UTC).date()
    at.date_input(key=DATES_KEY).set_value((today - timedelta(days=1), today)).run()
    no_exception(at)
    assert metrics(at)["Orders"] == str(PLATFORM.orders)
    assert at.query_params == {"start": (today - timedelta(days=1)).isoformat(), "end": today.isoformat()}


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
