# sockit - build, test, install.
#
#   make                 build libsockit.a, the sockit program and the examples
#   make test            unit + integration tests; ends with "N passed, N failed"
#   make sanitize        the same build with AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-sanitize   the whole test suite on the sanitizer build
#   make CC=clang        any C11 compiler
#   make install PREFIX=/usr/local DESTDIR=
#   make fuzz            the HTTP parser under libFuzzer (FUZZ_SECONDS=20)
#   make bench           the benchmark suite (bench/)
#   make format          clang-format every source file

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
AR      ?= ar

WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-missing-field-initializers
CSTD    := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
OPT     ?= -O2 -g
CFLAGS  ?=
CPPFLAGS += -Iinclude $(shell pkg-config --cflags openssl 2>/dev/null)
ALL_CFLAGS = $(CSTD) $(OPT) $(WARN) $(CPPFLAGS) $(CFLAGS) -MMD -MP
LDLIBS  += $(shell pkg-config --libs openssl 2>/dev/null || echo -lssl -lcrypto) -lpthread -lcrypt

LIB_SRC := $(wildcard src/lib/*.c src/engine/*.c src/services/*.c src/http/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
EX_SRC  := $(wildcard examples/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
LIB     := $(BUILD)/libsockit.a
BIN     := $(BUILD)/sockit
EXAMPLES := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: fuzz all test unit integration sanitize test-sanitize install uninstall clean format bench check-format
all: $(BIN) $(EXAMPLES) $(BUILD)/sockit.pc

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	@echo "  LINK    $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc/lib -Isrc/engine -Isrc/services -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS) -lcmocka

VERSION := $(shell sed -n 's/\#define SOCKIT_VERSION "\(.*\)"/\1/p' include/sockit.h)

# For use from the build tree; `make install` writes its own with the real PREFIX.
$(BUILD)/sockit.pc: sockit.pc.in Makefile
	@mkdir -p $(dir $@)
	@sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

# The test command: unit tests (cmocka) then integration tests (the real
# binary, driven by real clients); tests/run.sh prints the final tally.
test: all $(UNIT_BINS)
	@BUILD=$(BUILD) bash tests/run.sh

unit: $(UNIT_BINS)
	@BUILD=$(BUILD) bash tests/run.sh --unit

integration: all
	@BUILD=$(BUILD) bash tests/run.sh --integration

SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
sanitize:
	$(MAKE) BUILD=build-san OPT="-O1 -g" CFLAGS="$(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" all

test-sanitize:
	$(MAKE) BUILD=build-san OPT="-O1 -g" CFLAGS="$(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" test

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/sockit
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libsockit.a
	install -m 644 include/sockit.h $(DESTDIR)$(PREFIX)/include/sockit.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' sockit.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/sockit.pc
	chmod 644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/sockit.pc
	install -m 644 man/sockit.1 $(DESTDIR)$(PREFIX)/share/man/man1/sockit.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/sockit $(DESTDIR)$(PREFIX)/lib/libsockit.a \
	    $(DESTDIR)$(PREFIX)/include/sockit.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/sockit.pc \
	    $(DESTDIR)$(PREFIX)/share/man/man1/sockit.1

fuzz:
	bash tests/fuzz/run.sh $(FUZZ_SECONDS)

bench: all
	python3 bench/run.py $(BENCH_ARGS)

format:
	clang-format -i $(LIB_SRC) $(CLI_SRC) $(EX_SRC) $(UNIT_SRC) include/*.h src/*/*.h

check-format:
	clang-format --dry-run -Werror $(LIB_SRC) $(CLI_SRC) $(EX_SRC) $(UNIT_SRC) include/*.h src/*/*.h

clean:
	rm -rf build build-san

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
