"""Analytics: shop daily metrics, the funnel, cohorts, search terms, and the drill-down platform → shop
→ product (pick a row or a filter)."""

from dashboard.page import section_page

if __name__ == "__main__":  # run as a page by the router
    section_page("analytics")
