"""Browser tests: notebooks served by Voila, driven in headless Chromium (see conftest.py)."""
