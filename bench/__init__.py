"""pycnn's benchmark suites: `python -m bench SUITE`. See bench/__main__.py."""
