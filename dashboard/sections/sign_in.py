"""The sign-in page: the only page a visitor sees before signing in."""

from __future__ import annotations

import streamlit as st

from api.core.settings import Settings
from dashboard import access
from dashboard.context import VIEWER_KEY
from dashboard.data.store_reads import StoreReads

EMAIL_KEY = "sign_in_email"
PASSWORD_KEY = "sign_in_password"


def render(reads: StoreReads, settings: Settings) -> None:
    st.title("Crypto Store dashboard")
    st.caption(
        "Sign in with your store account. Analysts and admins see the platform; shop owners their shops."
    )
    with st.form("sign_in"):
        email = st.text_input("Email", key=EMAIL_KEY, autocomplete="username")
        password = st.text_input(
            "Password", type="password", key=PASSWORD_KEY, autocomplete="current-password"
        )
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    if not email or not password:
        st.error("Enter your email and password.")
        return
    try:
        viewer = access.sign_in(reads, settings, email, password)
    except access.SignInRefused as exc:
        st.error(str(exc))
        return
    st.session_state[VIEWER_KEY] = viewer
    st.rerun()
