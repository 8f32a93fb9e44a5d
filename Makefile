# autoswitch: see README.md.  The two commands a newcomer needs:
#   make run    install what is missing, build, start on conf/openai_proxy.yaml
#   make test   install what is missing, build, run every test
VERSION    := 0.1.0
CC         ?= cc
BUILD      ?= build
SAN        ?=
CONFIG     ?= conf/openai_proxy.yaml

WARN       := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes -Wvla
CPPFLAGS   += -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -DAUTOSWITCH_VERSION='"$(VERSION)"' -Isrc -I$(BUILD)/gen
CFLAGS     ?= -O2 -g
CFLAGS     += -std=c11 $(WARN) -fno-strict-aliasing
LDLIBS     += -lbearssl -lyaml

ifeq ($(SAN),1)
CFLAGS     += -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS    += -fsanitize=address,undefined
endif

SRCS       := $(filter-out src/main.c,$(wildcard src/*.c))
OBJS       := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
GEN_OBJS   := $(BUILD)/obj/ui_data.o
LIB        := $(BUILD)/libautoswitch.a
BIN        := $(BUILD)/autoswitch
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
INTEG      := $(sort $(wildcard tests/integration/*.t))
UI_FILES   := $(sort $(wildcard ui/*))

.PHONY: all deps run test test-only asan test-asan clean valgrind clang unit demo
.DEFAULT_GOAL := all

all: $(BIN)

deps:
	@scripts/deps.sh

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/obj $(BUILD)/gen/ui_data.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/gen/ui_data.c $(BUILD)/gen/ui_data.h: scripts/embed_ui.sh $(UI_FILES) | $(BUILD)/gen
	scripts/embed_ui.sh ui $(BUILD)/gen

$(BUILD)/obj/ui_data.o: $(BUILD)/gen/ui_data.c | $(BUILD)/obj
	$(CC) $(CPPFLAGS) $(filter-out -W%,$(CFLAGS)) -c -o $@ $<

$(LIB): $(OBJS) $(GEN_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/obj/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/tap.h $(LIB) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/obj $(BUILD)/gen $(BUILD)/tests:
	mkdir -p $@

unit: $(UNIT_BINS)

run: deps all
	$(BIN) -c $(CONFIG)

# Every test: C unit tests and the real binary against mock upstreams.
test: deps
	$(MAKE) --no-print-directory test-only

test-only: all unit
	AUTOSWITCH_BIN=$(abspath $(BIN)) BUILD_DIR=$(abspath $(BUILD)) \
	  prove --exec '' --timer -j2 $(UNIT_BINS) $(INTEG)

asan:
	$(MAKE) --no-print-directory BUILD=build-asan SAN=1 all unit

test-asan: deps
	SANITIZED=1 $(MAKE) --no-print-directory BUILD=build-asan SAN=1 test-only

# Warnings must be clean under clang as well as gcc.
clang:
	$(MAKE) --no-print-directory BUILD=build-clang CC=clang all unit

# Start, serve 1000 requests, SIGTERM, under valgrind: no leaks.
valgrind: all
	AUTOSWITCH_BIN=$(abspath $(BIN)) scripts/valgrind.sh

demo: deps all
	scripts/demo.sh

clean:
	rm -rf build build-asan build-clang
