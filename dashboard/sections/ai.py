"""AI Insights: forecasts with their intervals, segments, recommendation quality, the fraud queue and
the insights list."""

from dashboard.page import section_page

if __name__ == "__main__":  # run as a page by the router
    section_page("ai")
