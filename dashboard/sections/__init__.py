"""One module per dashboard section. Each is a Streamlit page script (run by `st.navigation`) whose
`render` function takes the page's context."""
