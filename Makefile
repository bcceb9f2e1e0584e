# gridmeter top-level Makefile.
#
#   make                 kernel modules + userspace for ARCH (default x86_64)
#   make ARCH=arm64      cross-build both for the Raspberry Pi (arm64)
#   make KERNEL=6.12 modules   the modules for Debian's 6.12 (bookworm-backports)
#   make check           the full test suite (the README's test command)
#   make demo            the whole system on this machine: the gateway image in
#                        QEMU, townd, maind, the portal (the README's first command)
#   make screenshots     the pages' screenshots in Documentation/images
#
# Components plug in through small fragments (*.mk) that append to:
#   PROGS        userspace programs for ARCH           name_SRCS name_PKGS name_LDLIBS
#   UNIT_TESTS   host-only unit tests (kselftest harness) same variables
#   GUEST_TESTS  kselftest programs run inside the QEMU guests (built for ARCH)
#   BENCHES      host benchmarks under bench/
#   WEB_PROGS    host programs the browser tests start (tests/web/run.sh),
#                built by make web-progs into build/host/web
# Kernel modules are listed in ./Kbuild.

# Every core compiles (2 on the CI machines), one object at a time per core.
# GM_JOBS=1 for a serial build.
MAKEFLAGS += -j$(or $(GM_JOBS),$(shell nproc 2>/dev/null || echo 2))

ARCH ?= x86_64
ifeq ($(ARCH),x86)
override ARCH := x86_64
endif
ifeq ($(ARCH),aarch64)
override ARCH := arm64
endif

B      := build
CACHE  := $(B)/cache
OUT    := $(B)/$(ARCH)
HOSTOUT := $(B)/host
KABI   := $(shell scripts/kver.sh 2>/dev/null)
KSFT   := $(CACHE)/linux-source/tools/testing/selftests

ifeq ($(ARCH),x86_64)
KARCH     := x86
DEBARCH   := amd64
CROSS     :=
KDIR      := /usr/src/linux-headers-$(KABI)-amd64
SYSROOT   :=
else ifeq ($(ARCH),arm64)
KARCH     := arm64
DEBARCH   := arm64
CROSS     := aarch64-linux-gnu-
KDIR      := $(abspath $(CACHE)/arm64/root/usr/src/linux-headers-$(KABI)-arm64)
SYSROOT   := $(abspath $(CACHE)/arm64/root)
else
$(error ARCH must be x86_64 or arm64, not '$(ARCH)')
endif

# The kernel the modules build for: Debian 12's own (6.1, the default) or
# the 6.12 of bookworm-backports (scripts/k612-cache.sh). Modules for 6.12
# go to build/ARCH-6.12; userspace is the same for both.
KERNEL ?= 6.1
KOUT   := $(OUT)
ifeq ($(KERNEL),6.12)
K612      := $(CACHE)/k612
# recursive: in a fresh clone the cache (and its kabi file) is made by this
# very run, after the Makefile is read
KABI_612   = $(shell cat $(K612)/kabi 2>/dev/null)
KOUT      := $(OUT)-6.12
ifeq ($(origin KDIR),file)
KDIR       = $(abspath $(K612)/root/usr/src/linux-headers-$(KABI_612)-$(DEBARCH))
KPREREQ   := $(K612)/.stamp
endif
else ifneq ($(KERNEL),6.1)
$(error KERNEL must be 6.1 or 6.12, not '$(KERNEL)')
endif

CC       := $(CROSS)gcc
HOSTCC   := gcc
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
# Include folders: fragments append theirs to INCDIRS (lib/ rooms, agent/ rooms).
INCDIRS :=
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -Iinclude -Iinclude/uapi $(addprefix -I,$(INCDIRS)) -isystem $(KSFT)
CFLAGS   ?=
PKG_CONFIG := pkg-config
ifneq ($(SYSROOT),)
# arm64: libraries come from Debian arm64 packages unpacked into the cache
# (never apt-get installed). pkg-config is pointed at that tree.
PKG_CONFIG := PKG_CONFIG_SYSROOT_DIR=$(SYSROOT) \
	PKG_CONFIG_LIBDIR=$(SYSROOT)/usr/lib/aarch64-linux-gnu/pkgconfig:$(SYSROOT)/usr/share/pkgconfig \
	pkg-config
XLDFLAGS := -Wl,-rpath-link,$(SYSROOT)/usr/lib/aarch64-linux-gnu -Wl,-rpath-link,$(SYSROOT)/lib/aarch64-linux-gnu
# Library headers from the sysroot are system headers, as /usr/include is on
# the host (GCC then ignores the same directory given by pkg-config's -I).
XCFLAGS := -isystem $(SYSROOT)/usr/include -isystem $(SYSROOT)/usr/include/aarch64-linux-gnu
endif

PROGS :=
UNIT_TESTS :=
GUEST_TESTS :=
BENCHES :=
WEB_PROGS :=
# lib/ first: libraries export their sources (e.g. GMLINK_SRCS) to the others.
include $(sort $(wildcard lib/*/*.mk))
include $(sort $(wildcard agent/*.mk agent/*/*.mk server/*.mk server/*/*.mk server/*/*/*.mk tests/*.mk tests/*/*.mk tests/guest/*/*.mk bench/*.mk))

.PHONY: all modules userspace unit guest-tests check demo image initramfs deps \
	sparse checkpatch guest-check bench clean distclean ksft arm64-cache selfcheck dtbs \
	k612-cache web-progs screenshots web-check debs

all: modules userspace

deps:
	@scripts/deps.sh

# --- kselftest harness and checkpatch, from Debian's linux-source-6.1 -------
$(KSFT)/kselftest_harness.h:
	@scripts/linux-source-extract.sh $(CACHE)/linux-source
ksft: $(KSFT)/kselftest_harness.h

# --- arm64 headers, kernel and userspace sysroot ----------------------------
$(CACHE)/arm64/.stamp-$(KABI): scripts/arm64-cache.sh
	@scripts/arm64-cache.sh $(CACHE)/arm64 $(KABI)
arm64-cache: $(CACHE)/arm64/.stamp-$(KABI)
# --- 6.12 headers, kbuild and kernels (x86_64 and arm64) -------------------
$(CACHE)/k612/.stamp: scripts/k612-cache.sh
	@scripts/k612-cache.sh $(CACHE)/k612 && touch $@
k612-cache: $(CACHE)/k612/.stamp
# The cache is needed unless the caller names its own kernel tree (a native
# build on the Pi: make modules ARCH=arm64 CROSS= KDIR=/lib/modules/.../build).
ifeq ($(ARCH)$(origin KDIR),arm64file)
ARCH_PREREQ := $(CACHE)/arm64/.stamp-$(KABI)
endif

# --- kernel modules ---------------------------------------------------------
# Kbuild on 6.1 cannot put an external module's objects outside its source
# tree, so each architecture gets a tree of symlinks under build/ARCH/kmod.
KMOD_TREE := $(KOUT)/kmod
KBUILD_ARGS = -C $(KDIR) M=$(abspath $(KMOD_TREE)) ARCH=$(KARCH) \
	$(if $(CROSS),CROSS_COMPILE=$(CROSS) DEB_BUILD_ARCH=amd64 DEB_HOST_ARCH=arm64 DEB_HOST_GNU_TYPE=aarch64-linux-gnu)

kmod-tree: $(ARCH_PREREQ) $(KPREREQ)
	@mkdir -p $(KMOD_TREE)/tests
	@for d in drivers tests/kmod tests/include include; do \
		[ ! -d $$d ] || cp -rsfT $(CURDIR)/$$d $(KMOD_TREE)/$$d; done
	@ln -sf $(CURDIR)/Kbuild $(KMOD_TREE)/Kbuild
	@find -L $(KMOD_TREE) -type l -delete 2>/dev/null || true

modules: kmod-tree
	$(MAKE) $(KBUILD_ARGS) modules

# sparse over every kernel source; any warning fails.
sparse: kmod-tree
	@# kbuild goes silent under an outer "make -s" and would hide its CHECK
	@# lines: run it with a clean MAKEFLAGS so the count below is real.
	@env -u MAKEFLAGS -u MFLAGS $(MAKE) --no-print-directory $(KBUILD_ARGS) C=2 CHECK=sparse modules >$(KOUT)/sparse.log 2>&1 || \
		{ cat $(KOUT)/sparse.log; exit 1; }
	@if grep -E 'warning:|error:' $(KOUT)/sparse.log; then echo "sparse: warnings above" >&2; exit 1; fi
	@n=$$(grep -c '^  CHECK ' $(KOUT)/sparse.log); [ "$$n" -gt 0 ] || \
		{ echo "sparse: checked no file" >&2; exit 1; }; \
		echo "sparse: clean ($(ARCH), $(KERNEL), $$n files checked)"

# checkpatch of both kernels: 6.1's from linux-source-6.1, 6.12's from the
# 6.12 cache; a file must be clean for both.
checkpatch: ksft $(CACHE)/k612/.stamp
	@a=0; b=0; scripts/checkpatch.sh 6.1 $(CACHE)/linux-source || a=1; \
		scripts/checkpatch.sh 6.12 $(CACHE)/k612/linux-source || b=1; \
		[ $$a -eq 0 ] && [ $$b -eq 0 ]

# --- userspace --------------------------------------------------------------
# Every source is compiled once per output tree into an object, with its
# header dependencies (-MMD), and the programs link the objects:
#   build/host/obj/PATH.o   unit tests and benchmarks (host compiler)
#   build/ARCH/obj/PATH.o   programs and guest tests (CC for ARCH)
# Include folders are one union per tree: BASE_CFLAGS, every -I of the
# tree's name_CFLAGS and the pkg-config cflags of every name_PKGS in it
# (gm_tree_check refuses a header that the union would let shadow another).
# Every other flag of name_CFLAGS changes the code (a sanitiser, -pthread,
# an optimisation): such a program gets objects of its own, in
# build/TREE/obj-FLAGS/ (e.g. obj-fno-tree-vectorize). Before issue 14 each
# program compiled all its sources in one go: 887 compilations for the unit
# tests instead of 167 (Documentation/testing.md, "Building").
empty :=
space := $(empty) $(empty)
comma := ,
# gm_vflags NAME: NAME's code-changing flags; gm_vdir NAME: its object folder
gm_vflags = $(filter-out -I%,$($(1)_CFLAGS))
gm_vdir = obj$(if $(call gm_vflags,$(1)),$(subst /,_,$(subst =,_,$(subst $(comma),_,$(subst $(space),,$(strip $(call gm_vflags,$(1))))))))
# gm_objs NAME,TREE: the objects NAME links
gm_objs = $(addprefix $(2)/$(call gm_vdir,$(1))/,$(patsubst %.c,%.o,$(sort $($(1)_SRCS))))

# gm_tree_incs PROGRAMS,PKG_CONFIG: the include flags of a tree
gm_tree_incs = $(strip $(filter-out $(addprefix -I,include include/uapi $(INCDIRS)),\
	$(sort $(foreach p,$(1),$(filter -I%,$($(p)_CFLAGS))))) \
	$(foreach k,$(sort $(foreach p,$(1),$($(p)_PKGS))),$(call gm_pkg_cflags,$(k),$(2))))
gm_pkg_cflags = $(foreach f,$(shell $(2) --cflags $(1)),$(if $(filter -I%,$(f)),$(f),\
	$(error pkg-config $(1) gives '$(f)', which is not an include folder: the objects of a tree share their flags (Makefile, "userspace"))))
# gm_tree_check INCLUDE_FLAGS,SYSTEM_INCLUDE: a folder that only some
# programs name (-Iserver...) must not hold a header whose name is also in
# another folder of the union or in the system's, or the union would change
# which file an #include of the others finds.
gm_hdrs = $(notdir $(wildcard $(addsuffix /*.h,$(1))))
gm_tree_check = $(foreach d,$(filter-out /% include include/uapi $(INCDIRS),$(patsubst -I%,%,$(1))),\
	$(foreach h,$(filter $(call gm_hdrs,$(d)),$(call gm_hdrs,$(filter-out $(d),include include/uapi $(INCDIRS) $(patsubst -I%,%,$(1))) $(2))),\
	$(error $(d)/$(h): another include folder of this tree or the system has a $(h) too: rename one (a tree's objects share one include path))))

# gm_tree TREE,PROGRAMS,COMPILER,PKG_CONFIG,SYSTEM_INCLUDE,PREREQ,VAR: a
# tree's compile rules. VAR holds its include flags, worked out (pkg-config)
# once, when the first of its objects is made; TREE/obj/.cflags holds the
# whole command line so that a change to it recompiles the tree.
define gm_tree
$(7) = $$(eval $(7) := $$$$(call gm_tree_incs,$(2),$(4)))$$(strip $$(call gm_tree_check,$$($(7)),$(5)))$$($(7))
$(1)/obj/.cflags: FORCE $(6)
	@mkdir -p $$(@D)
	@printf '%s\n' '$(3) $$(BASE_CFLAGS) $$(CFLAGS) $$($(7))' | cmp -s - $$@ || \
		printf '%s\n' '$(3) $$(BASE_CFLAGS) $$(CFLAGS) $$($(7))' >$$@
$(foreach v,$(sort $(foreach p,$(2),$(call gm_vdir,$(p)))),$(call gm_obj_rule,$(1),$(v),$(3),$(7),$(6),$(2)))
endef
# gm_obj_rule TREE,OBJDIR,COMPILER,VAR,PREREQ,PROGRAMS
gm_vprogs = $(foreach p,$(2),$(if $(filter $(1),$(call gm_vdir,$(p))),$(p)))
define gm_obj_rule_text
$(sort $(foreach p,$(call gm_vprogs,$(2),$(6)),$(call gm_objs,$(p),$(1)))): $(1)/$(2)/%.o: %.c $(1)/obj/.cflags $(5) | $(KSFT)/kselftest_harness.h
	@mkdir -p $$(@D)
	$$(if $$(V),,@echo "  CC      $$@";) $(3) $$(BASE_CFLAGS) $$(CFLAGS) $(call gm_vflags,$(firstword $(call gm_vprogs,$(2),$(6)))) \
		$$($(4)) -MMD -MP -c -o $$@ $$<
endef
gm_obj_rule = $(eval $(call gm_obj_rule_text,$(1),$(2),$(3),$(4),$(5),$(6)))

# gm_link NAME,DIR,TREE,LINKER,PKG_CONFIG,EXTRA_LDFLAGS: one program from its
# objects (name_CFLAGS again: -fsanitize and -pthread link their runtime;
# LDFLAGS, empty unless given: the Debian packages' -z relro -z now).
define gm_link
$(2)/$(1): $(call gm_objs,$(1),$(3))
	@mkdir -p $$(@D)
	$$(if $$(V),,@echo "  LD      $$@";) $(4) $$(CFLAGS) $$(call gm_vflags,$(1)) -o $$@ $$(call gm_objs,$(1),$(3)) \
		$(6) $$(LDFLAGS) $$($(1)_LDFLAGS) $$(if $$($(1)_PKGS),$$(shell $(5) --libs $$($(1)_PKGS))) $$($(1)_LDLIBS)
endef

.PHONY: FORCE
HOST_PROGS := $(UNIT_TESTS) $(BENCHES) $(WEB_PROGS)
ARCH_PROGS := $(PROGS) $(GUEST_TESTS)
$(eval $(call gm_tree,$(HOSTOUT),$(HOST_PROGS),$(HOSTCC),pkg-config,/usr/include,,GM_INCS_HOST))
$(eval $(call gm_tree,$(OUT),$(ARCH_PROGS),$(CC) $$(XCFLAGS),$(PKG_CONFIG),$(SYSROOT)/usr/include,$(ARCH_PREREQ),GM_INCS_ARCH))

$(foreach p,$(PROGS),$(eval $(call gm_link,$(p),$(OUT)/bin,$(OUT),$(CC),$(PKG_CONFIG),$$(XLDFLAGS))))
$(foreach p,$(UNIT_TESTS),$(eval $(call gm_link,$(p),$(HOSTOUT)/unit,$(HOSTOUT),$(HOSTCC),pkg-config,)))
$(foreach p,$(BENCHES),$(eval $(call gm_link,$(p),$(HOSTOUT)/bench,$(HOSTOUT),$(HOSTCC),pkg-config,)))
$(foreach p,$(WEB_PROGS),$(eval $(call gm_link,$(p),$(HOSTOUT)/web,$(HOSTOUT),$(HOSTCC),pkg-config,)))
# Guest tests: static when they need no shared library, so the busybox
# initramfs needs nothing else for them.
$(foreach p,$(GUEST_TESTS),$(eval $(call gm_link,$(p),$(OUT)/guest-tests,$(OUT),$(CC),$(PKG_CONFIG),$$(if $$($(p)_PKGS),$$(XLDFLAGS),-static))))
-include $(sort $(patsubst %.o,%.d,$(foreach p,$(HOST_PROGS),$(call gm_objs,$(p),$(HOSTOUT))) \
	$(foreach p,$(ARCH_PROGS),$(call gm_objs,$(p),$(OUT)))))

userspace: $(addprefix $(OUT)/bin/,$(PROGS))
guest-tests: $(addprefix $(OUT)/guest-tests/,$(GUEST_TESTS))
unit-build: $(addprefix $(HOSTOUT)/unit/,$(UNIT_TESTS))
bench-build: $(addprefix $(HOSTOUT)/bench/,$(BENCHES))
web-progs: $(addprefix $(HOSTOUT)/web/,$(WEB_PROGS))

unit: unit-build
	@scripts/run-unit.sh $(addprefix $(HOSTOUT)/unit/,$(UNIT_TESTS))

bench: bench-build
	@scripts/run-bench.sh $(HOSTOUT)/bench $(BENCHES)

# --- Debian packages (Documentation/packaging.md) ---------------------------
# build/deb/ARCH/*.deb from a staged copy of the tree (scripts/mk-debs.sh).
debs:
	@scripts/mk-debs.sh $(ARCH)

# --- images -----------------------------------------------------------------
initramfs: modules guest-tests userspace
	@scripts/mk-initramfs.sh $(ARCH) $(KABI) $(OUT)

image:
	@scripts/mk-gateway-image.sh $(KABI)

# The whole system on this machine (Documentation/demo.md): the gateway image
# in QEMU reporting through a simulated SIM900 to townd, maind with its own
# PostgreSQL in build/demo and the utility portal; prints both pages' URLs and
# the logins. Ctrl-C stops everything.
demo: deps
	@scripts/demo.sh

# --- the pages in a real browser (tests/web, Documentation/testing.md) -------
# The browser tests alone (the make check stage "web").
web-check: deps
	@tests/web/run.sh
# The same tests, saving the pages' screenshots (1280x900 and a 390x844
# phone) into Documentation/images.
screenshots: deps
	@mkdir -p Documentation/images
	@GM_SCREENSHOTS=$(CURDIR)/Documentation/images tests/web/run.sh
	@ls -l Documentation/images/*.png

# --- the test suite -----------------------------------------------------------
check: deps
	@scripts/check.sh

selfcheck:
	@scripts/harness-selfcheck.sh $(ARCH)

# Build, boot the test initramfs for ARCH and judge it.
guest-check:
	@scripts/guest-check.sh $(ARCH)

clean:
	rm -rf $(B)/x86_64 $(B)/arm64 $(B)/x86_64-6.12 $(B)/arm64-6.12 $(B)/host
distclean:
	rm -rf $(B)
