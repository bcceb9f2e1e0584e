# meterweb, the in-home dashboard (Documentation/dashboard.md): a D-Bus
# client of meterd serving pages on lib/web. It links meterd's tariff
# engine (agent/core/tariff.c) so that the page reads the tariff as meterd
# bills it; nothing of meterd's daemon.
INCDIRS += agent/web
MW_CORE := agent/web/mw_config.c agent/web/snapshot.c agent/web/meter_client.c agent/web/history.c \
	agent/web/tariff_view.c agent/web/guest.c agent/web/words.c agent/web/home_cards.c agent/web/pages.c agent/web/app.c \
	agent/core/tariff.c $(CONF_SRCS)

PROGS += meterweb
meterweb_SRCS := $(MW_CORE) agent/web/main.c $(FILE_SRCS) $(WEB_SRCS)
meterweb_PKGS := libsystemd $(WEB_PKGS)
meterweb_LDLIBS := -pthread

# Unit tests (tests/unit/agent_test_web.c: config, days, tariff, guest codes, the Loads and
# Home sensors cards;
# tests/dbus/agent_test_web_bus.c: the snapshot against a real meterd).
UNIT_TESTS += agent_test_web
agent_test_web_SRCS := agent/web/mw_config.c agent/web/history.c agent/web/tariff_view.c agent/web/guest.c \
	agent/web/home_cards.c agent/web/pages.c agent/web/words.c agent/web/snapshot.c lib/web/html.c lib/web/layout.c \
	agent/core/tariff.c $(CONF_SRCS) tests/unit/agent_test_web.c
agent_test_web_PKGS := libsodium libsystemd
agent_test_web_LDLIBS := -pthread

UNIT_TESTS += agent_test_web_bus
agent_test_web_bus_SRCS := $(AGENT_CORE) $(AGENT_IO) agent/web/snapshot.c agent/web/meter_client.c \
	tests/dbus/agent_privbus.c tests/dbus/agent_test_web_bus.c
agent_test_web_bus_PKGS := $(meterd_PKGS)
agent_test_web_bus_CFLAGS := $(meterd_CFLAGS)
agent_test_web_bus_LDLIBS := -pthread

# tests/unit/agent_test_web_app.c: the routes on a real lib/web server, as a hostile client.
UNIT_TESTS += agent_test_web_app
agent_test_web_app_SRCS := $(MW_CORE) $(WEB_SRCS) tests/unit/agent_test_web_app.c
agent_test_web_app_PKGS := libsystemd $(WEB_PKGS)
agent_test_web_app_LDLIBS := -pthread
