"""Blockchain: payments by currency and chain, as far as the store records them."""

from dashboard.page import section_page

if __name__ == "__main__":  # run as a page by the router
    section_page("blockchain")
