# meterweb, the in-home dashboard (Documentation/dashboard.md): a D-Bus
# client of meterd serving pages on lib/web. It links meterd's tariff
# engine (agent/core/tariff.c) so that the page reads the tariff as meterd
# bills it; nothing of meterd's daemon.
INCDIRS += agent/web
MW_CORE := agent/web/mw_config.c agent/web/snapshot.c agent/web/meter_client.c agent/web/history.c \
	agent/web/tariff_view.c agent/web/guest.c agent/web/words.c agent/web/pages.c agent/web/app.c \
	agent/core/tariff.c $(CONF_SRCS)

PROGS += meterweb
meterweb_SRCS := $(MW_CORE) agent/web/main.c $(WEB_SRCS)
meterweb_PKGS := libsystemd $(WEB_PKGS)
meterweb_LDLIBS := -pthread
