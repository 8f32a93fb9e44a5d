# autoswitch: see README.md.  The two commands a newcomer needs:
#   make run    install what is missing, build, start on conf/openai_proxy.yaml
#   make test   install what is missing, build, run every test
VERSION    := 0.1.0
CC         ?= cc
BUILD      ?= build
SAN        ?=
CONFIG     ?= conf/openai_proxy.yaml

WARN       := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes -Wvla
# src/ is layered (src/README.md): each folder is a layer, a module
# includes headers of its own layer or below (scripts/layers.sh checks).
SRC_DIRS   := base formats transport policy gateway admin app
CPPFLAGS   += -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -DAUTOSWITCH_VERSION='"$(VERSION)"' $(SRC_DIRS:%=-Isrc/%) -I$(BUILD)/gen
CFLAGS     ?= -O2 -g
CFLAGS     += -std=c11 $(WARN) -fno-strict-aliasing
LDLIBS     += -lbearssl -lyaml

ifeq ($(SAN),1)
CFLAGS     += -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS    += -fsanitize=address,undefined
endif

SRCS       := $(filter-out src/app/main.c,$(wildcard $(SRC_DIRS:%=src/%/*.c)))
HDRS       := $(wildcard $(SRC_DIRS:%=src/%/*.h))
OBJS       := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
GEN_OBJS   := $(BUILD)/obj/ui_data.o

# Optional compiled-in CA bundle (src/transport/ca_builtin.h, scripts/gen_ca.c):
#   make CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
# (make static compiles the system bundle in unless given CA_BUNDLE=).
CA_BUNDLE  ?=
HOSTCC     ?= cc
ifneq ($(CA_BUNDLE),)
CPPFLAGS   += -DAUTOSWITCH_BUILTIN_CA
GEN_OBJS   += $(BUILD)/obj/ca_builtin.o
endif
LIB        := $(BUILD)/libautoswitch.a
BIN        := $(BUILD)/autoswitch
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
INTEG      := $(sort $(wildcard tests/integration/*.t))
UI_FILES   := $(sort $(wildcard ui/*))

.PHONY: all deps deps-test run test test-only asan test-asan clean valgrind clang unit demo fuzz
.DEFAULT_GOAL := all

all: $(BIN)

deps:
	@scripts/deps.sh

$(BUILD)/obj/%.o: src/%.c $(HDRS) | $(BUILD)/obj $(BUILD)/gen/ui_data.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/gen/ui_data.c $(BUILD)/gen/ui_data.h &: scripts/embed_ui.sh $(UI_FILES) | $(BUILD)/gen
	scripts/embed_ui.sh ui $(BUILD)/gen

$(BUILD)/obj/ui_data.o: $(BUILD)/gen/ui_data.c | $(BUILD)/obj
	$(CC) $(CPPFLAGS) $(filter-out -W%,$(CFLAGS)) -c -o $@ $<

$(LIB): $(OBJS) $(GEN_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/obj/app/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/tap.h $(LIB) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/obj $(BUILD)/gen $(BUILD)/tests:
	mkdir -p $@

$(BUILD)/gen_ca: scripts/gen_ca.c | $(BUILD)/gen
	$(HOSTCC) -std=c11 -O2 -o $@ $< -lbearssl

$(BUILD)/gen/ca_builtin.c: $(BUILD)/gen_ca $(CA_BUNDLE) | $(BUILD)/gen
	$(BUILD)/gen_ca $(CA_BUNDLE) $@

$(BUILD)/obj/ca_builtin.o: $(BUILD)/gen/ca_builtin.c src/transport/ca_builtin.h | $(BUILD)/obj
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# tls.c compiles differently with and without a bundle: rebuild it when
# CA_BUNDLE changes (the stamp is rewritten only then).
$(BUILD)/obj/transport/tls.o: $(BUILD)/gen/ca_bundle.stamp
$(BUILD)/gen/ca_bundle.stamp: FORCE | $(BUILD)/gen
	@echo '$(CA_BUNDLE)' | cmp -s - $@ || echo '$(CA_BUNDLE)' > $@
.PHONY: FORCE
FORCE:

unit: $(UNIT_BINS)

run: deps all
	$(BIN) -c $(CONFIG)

# Every test: C unit tests and the real binary against mock upstreams.
# Installs up front what the tests use beyond the build (node, chromium,
# musl, cross compilers, qemu), so no test has to.
deps-test:
	@scripts/deps.sh test

test: deps-test
	$(MAKE) --no-print-directory test-only

test-only: all unit
	AUTOSWITCH_BIN=$(abspath $(BIN)) BUILD_DIR=$(abspath $(BUILD)) \
	  prove --exec '' --timer --failures --comments -j3 $(UNIT_BINS) $(INTEG)

asan:
	$(MAKE) --no-print-directory BUILD=build-asan SAN=1 all unit

test-asan: deps-test
	SANITIZED=1 $(MAKE) --no-print-directory BUILD=build-asan SAN=1 test-only

# Warnings must be clean under clang as well as gcc.
clang:
	$(MAKE) --no-print-directory BUILD=build-clang CC=clang all unit

# Start, serve 1000 requests, SIGTERM, under valgrind: no leaks.
valgrind: all
	AUTOSWITCH_BIN=$(abspath $(BIN)) scripts/valgrind.sh

# libFuzzer targets for every parser of outside bytes (tests/fuzz/),
# FUZZ_SECONDS each after replaying the committed regression inputs.
FUZZ_SECONDS ?= 30
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

demo: deps all
	scripts/demo.sh

clean:
	rm -rf build build-asan build-clang

# ======================================================================
# Static, cross and container builds (everything below; README "Static
# binary, routers and Docker").
#
#   make static                 build-static/autoswitch for this machine
#   make static ARCH=aarch64    build-static-aarch64/autoswitch
#   make static ARCH=armhf      build-static-armhf/autoswitch
#   make static CA_BUNDLE=      without the compiled-in CA bundle
#                               (default: /etc/ssl/certs/ca-certificates.crt)
#
# A fully static, stripped binary on musl.  Native: Debian's musl-gcc
# (musl-tools).  Cross: Debian's cross gcc (gcc-aarch64-linux-gnu,
# gcc-arm-linux-gnueabihf) driven by the specs file of Debian's musl-dev
# package for that architecture (unpacked by scripts/vendor.sh, paths
# rewritten to vendor/).  BearSSL and libyaml are compiled from the pinned
# Debian sources (scripts/vendor.sh, vendor/SHA256SUMS) with the same
# compiler and flags.  The compiling runs as a sub-make with STATIC_ARCH
# set, which reuses the rules above with BUILD=<the static directory>.
# ======================================================================
STATIC_CROSS  := aarch64 armhf
HOST_ARCH     := $(shell uname -m | sed -e 's/^armv[78].*/armhf/' -e 's/^arm64$$/aarch64/')
ARCH          ?= $(HOST_ARCH)
override ARCH := $(patsubst arm64,aarch64,$(patsubst amd64,x86_64,$(ARCH)))
STATIC_DIR    := $(if $(filter $(HOST_ARCH),$(ARCH)),build-static,build-static-$(ARCH))
IS_CROSS      := $(filter-out $(HOST_ARCH),$(ARCH))
ifeq ($(origin CA_BUNDLE),file)
STATIC_CA     := /etc/ssl/certs/ca-certificates.crt
else
STATIC_CA     := $(CA_BUNDLE)
endif
# per architecture: the cross gcc prefix and Debian's musl triplet
CROSS_aarch64 := aarch64-linux-gnu-
CROSS_armhf   := arm-linux-gnueabihf-
MUSL_aarch64  := aarch64-linux-musl
MUSL_armhf    := arm-linux-musleabihf

.PHONY: static static-stage static-bin-path clean-static

static:
	@$(if $(filter $(HOST_ARCH) $(STATIC_CROSS),$(ARCH)),:,$(error make static: ARCH=$(ARCH) is not one of $(HOST_ARCH) $(STATIC_CROSS)))
	@scripts/deps.sh static $(if $(IS_CROSS),cross)
	@$(if $(STATIC_CA),test -r $(STATIC_CA) || { echo "make static: no CA bundle $(STATIC_CA) to compile in (install ca-certificates, or CA_BUNDLE= for none)" >&2; exit 1; })
	@scripts/vendor.sh bearssl libyaml $(if $(IS_CROSS),musl-$(ARCH))
	@$(MAKE) --no-print-directory BUILD=$(STATIC_DIR) STATIC_ARCH=$(ARCH) CA_BUNDLE=$(STATIC_CA) static-stage

# The binary make static ARCH=... writes (for scripts and tests).
static-bin-path:
	@echo $(STATIC_DIR)/autoswitch

clean-static:
	rm -rf build-static build-static-*

ifneq ($(STATIC_ARCH),)
STATIC_CFLAGS   := -Os -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fno-unwind-tables
override CFLAGS := $(STATIC_CFLAGS) -std=c11 $(WARN) -fno-strict-aliasing
override LDFLAGS := -static -s -Wl,--gc-sections -Wl,-O1 -Wl,--build-id=none
CPPFLAGS        += -Ivendor/bearssl/inc -Ivendor/libyaml/include
ifeq ($(STATIC_ARCH),$(HOST_ARCH))
override CC     := musl-gcc
MUSL_SPECS      :=
else
MUSL_DIR        := vendor/musl-$(STATIC_ARCH)
MUSL_SPECS      := $(BUILD)/musl-gcc.specs
override CC     := $(CROSS_$(STATIC_ARCH))gcc -specs $(abspath $(MUSL_SPECS))
endif

BEARSSL_OBJS := $(patsubst vendor/bearssl/src/%.c,$(BUILD)/vendor/bearssl/%.o,$(shell find vendor/bearssl/src -name '*.c' | LC_ALL=C sort))
YAML_OBJS    := $(patsubst vendor/libyaml/src/%.c,$(BUILD)/vendor/libyaml/%.o,$(wildcard vendor/libyaml/src/*.c))
YAML_VER     := $(shell sed -n 's/^set (YAML_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\))$$/\2/p' vendor/libyaml/CMakeLists.txt)
STATIC_LIBS  := $(BUILD)/libbearssl.a $(BUILD)/libyaml.a
override LDLIBS := $(STATIC_LIBS)

static-stage: $(BIN)
	@echo "static: $(BIN): $$(wc -c < $(BIN)) bytes ($(STATIC_ARCH), CA bundle: $(or $(CA_BUNDLE),none))"

$(BIN): $(STATIC_LIBS)
$(OBJS) $(GEN_OBJS) $(BUILD)/obj/app/main.o $(BEARSSL_OBJS) $(YAML_OBJS): | $(MUSL_SPECS)

$(BUILD)/vendor/bearssl/%.o: vendor/bearssl/src/%.c vendor/bearssl/.vendored
	@mkdir -p $(@D)
	$(CC) $(STATIC_CFLAGS) -Ivendor/bearssl/inc -Ivendor/bearssl/src -c -o $@ $<

$(BUILD)/vendor/libyaml/%.o: vendor/libyaml/src/%.c vendor/libyaml/.vendored
	@mkdir -p $(@D)
	$(CC) $(STATIC_CFLAGS) -Ivendor/libyaml/include -DYAML_VERSION_MAJOR=$(word 1,$(YAML_VER)) \
	  -DYAML_VERSION_MINOR=$(word 2,$(YAML_VER)) -DYAML_VERSION_PATCH=$(word 3,$(YAML_VER)) \
	  '-DYAML_VERSION_STRING="$(word 1,$(YAML_VER)).$(word 2,$(YAML_VER)).$(word 3,$(YAML_VER))"' -c -o $@ $<

$(BUILD)/libbearssl.a: $(BEARSSL_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/libyaml.a: $(YAML_OBJS)
	rm -f $@
	ar rcs $@ $^

# Debian's musl-gcc.specs for the target, pointed at the unpacked package.
$(MUSL_SPECS): $(MUSL_DIR)/.vendored
	@mkdir -p $(@D)
	sed -e 's|/usr/include/$(MUSL_$(STATIC_ARCH))|$(abspath $(MUSL_DIR))/usr/include/$(MUSL_$(STATIC_ARCH))|g' \
	    -e 's|/usr/lib/$(MUSL_$(STATIC_ARCH))|$(abspath $(MUSL_DIR))/usr/lib/$(MUSL_$(STATIC_ARCH))|g' \
	    $(MUSL_DIR)/usr/lib/$(MUSL_$(STATIC_ARCH))/musl-gcc.specs > $@.tmp
	mv $@.tmp $@
endif
