"""Who the simulated users are and how each kind behaves; the numbers here are the planted truth.

- window shoppers: come often, browse and view a lot, almost never buy.
- bargain hunters: price-sensitive. Their purchase probability is scaled by (reference / price) ** 3, so
  it falls steeply as a product gets dearer than its category's reference price; they sort by price,
  set price alerts and follow few shops.
- loyal buyers: stick to a few favourite shops, follow them, buy again and again, hardly mind prices.
- big spenders: come less often, buy more items per order and lean towards dear products.
- sellers: own one shop each; log in daily to ship paid orders, mark shipped ones delivered, answer
  chats and calls, restock products that run low and now and then change a price.
- fraudsters: fresh accounts that sign up mid-history, fail several logins (guessing passwords),
  then place a burst of dear orders within minutes, pay some and cancel many. Every order they place
  is listed as fraudulent in the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Persona(StrEnum):
    window_shopper = "window_shopper"
    bargain_hunter = "bargain_hunter"
    loyal_buyer = "loyal_buyer"
    big_spender = "big_spender"
    fraudster = "fraudster"
    seller = "seller"


@dataclass(frozen=True)
class PersonaSpec:
    share: float  # fraction of the buyers with this persona (the fraudsters' is set per profile)
    activity: float  # chance of a session on an average day, times the profile's activity
    views: tuple[int, int]  # product pages per session (min, max)
    purchase: float  # chance a viewed product at its reference price is bought, on an average day
    elasticity: float  # purchase chance scales with (reference / price) ** elasticity
    quantity: tuple[int, int]
    preferred: tuple[int, int]  # how many preferred categories
    follow: float  # chance per view of following the product's shop
    alert: float  # chance per view of setting a price alert
    chat: float  # chance per session of writing to a shop
    review: float  # chance of reviewing a delivered order
    cancel: float  # chance of cancelling an order instead of paying
    price_sort: float  # chance of browsing cheapest first


SPECS: dict[Persona, PersonaSpec] = {
    Persona.window_shopper: PersonaSpec(
        0.30, 0.55, (5, 10), 0.01, 0.5, (1, 1), (2, 3), 0.03, 0.01, 0.05, 0.3, 0.3, 0.2
    ),
    Persona.bargain_hunter: PersonaSpec(
        0.25, 0.50, (4, 9), 0.12, 3.0, (1, 2), (1, 3), 0.02, 0.10, 0.05, 0.5, 0.1, 0.5
    ),
    Persona.loyal_buyer: PersonaSpec(
        0.25, 0.45, (2, 5), 0.15, 0.3, (1, 2), (1, 2), 0.15, 0.0, 0.10, 0.7, 0.05, 0.0
    ),
    Persona.big_spender: PersonaSpec(
        0.12, 0.30, (2, 5), 0.25, -0.5, (2, 5), (2, 4), 0.05, 0.0, 0.15, 0.4, 0.05, 0.0
    ),
    Persona.fraudster: PersonaSpec(0.08, 0.0, (0, 0), 0.0, 0.0, (1, 3), (1, 1), 0.0, 0.0, 0.0, 0.0, 0.5, 0.0),
}

SELLER_STOCK_CHECK = 0.5  # chance per active day of checking stock and restocking what runs low
SELLER_PRICE_CHANGE = 0.15  # chance per active day of repricing one product
SELLER_CHAT_REPLY = 0.8
SELLER_CALL_ACCEPT = 0.7
FRAUD_FAILED_LOGINS = (3, 8)
FRAUD_BURST = (4, 9)  # orders in a burst
FRAUD_PAY = 0.6
