"""Overview: the headline numbers of a date range against the range just before it, from the marts."""

from dashboard.page import section_page

if __name__ == "__main__":  # run as a page by the router
    section_page("overview")
