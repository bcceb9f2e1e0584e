# lib/web (Documentation/web.md): HTML, HTTP, sessions, TOTP.
UNIT_TESTS += web_test_http
web_test_http_SRCS := $(WEB_SRCS) tests/unit/web_test_http.c
web_test_http_PKGS := $(WEB_PKGS) zlib

UNIT_TESTS += web_test_totp
web_test_totp_SRCS := $(WEB_TOTP_SRCS) tests/unit/web_test_totp.c
web_test_totp_PKGS := $(WEB_TOTP_PKGS) libsodium

UNIT_TESTS += web_test_html
web_test_html_SRCS := lib/web/html.c tests/unit/web_test_html.c

UNIT_TESTS += web_test_auth
web_test_auth_SRCS := lib/web/auth.c tests/unit/web_test_auth.c
web_test_auth_PKGS := libsodium

UNIT_TESTS += web_test_tls
web_test_tls_SRCS := $(WEB_SRCS) tests/unit/web_test_tls.c
web_test_tls_PKGS := $(WEB_PKGS) libssl libcrypto
