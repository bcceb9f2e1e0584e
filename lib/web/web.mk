# lib/web: what the two web daemons share (issue 14, Documentation/web.md):
# HTTP on libmicrohttpd with the security headers, HTML writing, passwords,
# sessions, CSRF, TOTP, the common page frame, and the static files (web/static
# and uPlot from npm) built into the programs. Use it as:
#   prog_SRCS += $(WEB_SRCS)        prog_PKGS += $(WEB_PKGS)
#   (+ $(WEB_TOTP_SRCS) and WEB_TOTP_PKGS for the second factor)
WEB_ASSETS_C = $(B)/web/assets.c
WEB_SRCS = lib/web/http.c lib/web/html.c lib/web/auth.c lib/web/layout.c lib/web/assets.c \
	$(WEB_ASSETS_C)
WEB_PKGS = libmicrohttpd libsodium
WEB_TOTP_SRCS = lib/web/totp.c
WEB_TOTP_PKGS = libcrypto
INCDIRS += lib/web

# The files served under /static/: ours, then uPlot's from the npm lock file.
WEB_STATIC = $(sort $(wildcard web/static/*))
WEB_UPLOT = $(B)/npm/node_modules/uplot/dist
WEB_ASSET_ARGS = $(foreach f,$(WEB_STATIC),/static/$(notdir $(f))=$(f)) \
	/static/uPlot.min.js=$(WEB_UPLOT)/uPlot.iife.min.js \
	/static/uPlot.min.css=$(WEB_UPLOT)/uPlot.min.css

$(B)/npm/.stamp: web/package.json web/package-lock.json scripts/web-npm.sh
	@scripts/web-npm.sh

$(WEB_ASSETS_C): scripts/web-assets.py $(WEB_STATIC) $(B)/npm/.stamp
	@mkdir -p $(@D)
	@python3 scripts/web-assets.py $@ $(WEB_ASSET_ARGS)

.PHONY: web-npm
web-npm: $(B)/npm/.stamp
