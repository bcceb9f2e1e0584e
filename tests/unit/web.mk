# lib/web (Documentation/web.md): HTML, HTTP, sessions, TOTP.
UNIT_TESTS += web_test_http
web_test_http_SRCS := $(WEB_SRCS) tests/unit/web_test_http.c
web_test_http_PKGS := $(WEB_PKGS) zlib
