"""System: pipeline runs and freshness, check results, API latency and errors, warehouse size (analysts
and admins)."""

from dashboard.page import section_page

if __name__ == "__main__":  # run as a page by the router
    section_page("system")
