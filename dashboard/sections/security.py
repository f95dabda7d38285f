"""Security: failed logins, blocked requests and suspicious orders (analysts and admins)."""

from dashboard.page import section_page

if __name__ == "__main__":  # run as a page by the router
    section_page("security")
