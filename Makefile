# sockit - build, test, install.
#
#   make                 build libsockit.a, libsockit.so, the sockit program and the examples
#   make test            unit + integration tests; ends with "N passed, N failed"
#   make sanitize        the same build with AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-sanitize   the whole test suite on the sanitizer build
#   make CC=clang        any C11 compiler
#   make install PREFIX=/usr/local DESTDIR=
#   make fuzz            the HTTP and PROXY parsers under libFuzzer (FUZZ_SECONDS=20)
#   make bench           the benchmark suite (bench/README.md; ~25 min): BENCH_ARGS="--quick",
#                        "--only ext-echo-p1,tls-", "--list"; peers missing are skipped, saying so
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
BENCH_SRC := $(wildcard src/bench/*.c)
EX_SRC  := $(wildcard examples/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
# file transfer (send / serve recv): XXH3 hashes, zstd chunks, SHA-256
XFER_LIBS := $(shell pkg-config --libs libxxhash libzstd libcrypto 2>/dev/null || echo -lxxhash -lzstd -lcrypto)
LDLIBS  += $(XFER_LIBS)
# XXH3 through the library's run-time choice of vector unit (x86-64: AVX2 or
# AVX-512, 3-4x the SSE2 its plain entry points are built for; the hash was
# ~14% of the receiver's CPU), where the installed library has that entry.
XXH_DISPATCH := $(shell printf '\043include <xxhash.h>\n\043include <xxh_x86dispatch.h>\nint main(void){return (int)XXH3_128bits_update(XXH3_createState(), "", 0);}\n' | \
                  $(CC) -x c - -o /dev/null $(XFER_LIBS) >/dev/null 2>&1 && echo 1)
ifeq ($(XXH_DISPATCH),1)
CPPFLAGS += -DSK_XXH_DISPATCH
endif
# --model uring: only where liburing is installed (Linux; liburing-dev). URING=0 leaves it out.
URING ?= 1
ifeq ($(URING),1)
URING_LIBS := $(shell pkg-config --libs liburing 2>/dev/null)
endif
ifneq ($(URING_LIBS),)
CPPFLAGS += -DSK_HAVE_URING $(shell pkg-config --cflags liburing 2>/dev/null)
LDLIBS  += $(URING_LIBS)
endif

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
BENCH_OBJ := $(BENCH_SRC:%.c=$(BUILD)/%.o)
LIB     := $(BUILD)/libsockit.a
BENCH_LIB := $(BUILD)/libsockit-bench.a # the load generator (src/bench): the program and its tests
BIN     := $(BUILD)/sockit

VERSION := $(shell sed -n 's/\#define SOCKIT_VERSION "\(.*\)"/\1/p' include/sockit.h)
# The shared library: real name libsockit.so.VERSION, soname libsockit.so.MAJOR
# (what programs record and the loader looks for), and the libsockit.so link
# for -lsockit at build time.
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
SONAME  := libsockit.so.$(SOMAJOR)
SOREAL  := libsockit.so.$(VERSION)
SOLIB   := $(BUILD)/$(SOREAL)
# Library objects are position-independent (one object set serves both
# libraries: measured, -fPIC costs the program 0.2% of text on x86-64, since
# hidden symbols are bound locally anyway) and hidden unless include/sockit.h
# declares them (its `#pragma GCC visibility push(default)`). Hidden symbols
# stay linkable from the static archive, which the program and the unit tests
# use; only libsockit.so hides them.
LIB_CFLAGS := -fPIC -fvisibility=hidden
# A shared library must not lean on symbols the program would provide; the
# sanitizer runtimes are the exception (clang links them into programs only).
SO_NOUNDEF := $(if $(findstring -fsanitize,$(CFLAGS) $(LDFLAGS)),,-Wl,--no-undefined)
EXAMPLES := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: fuzz all test unit integration sanitize test-sanitize install uninstall clean format bench check-format
all: $(BIN) $(EXAMPLES) $(SOLIB) $(BUILD)/sockit.pc

$(LIB_OBJ): ALL_CFLAGS += $(LIB_CFLAGS)
# Objects compiled before these flags existed cannot go into a shared library:
# a stamp holding the flags makes the library objects rebuild when they change.
LIB_STAMP := $(BUILD)/.lib-cflags
ifeq ($(filter clean format check-format fuzz,$(MAKECMDGOALS)),)
$(shell mkdir -p $(BUILD) && (echo '$(LIB_CFLAGS)' | cmp -s - $(LIB_STAMP) || \
    echo '$(LIB_CFLAGS)' > $(LIB_STAMP)))
endif
$(LIB_OBJ): $(LIB_STAMP)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(SOLIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(CSTD) $(OPT) $(CFLAGS) -shared -Wl,-soname,$(SONAME) $(SO_NOUNDEF) -o $@ \
	    $(LIB_OBJ) $(LDFLAGS) $(LDLIBS)
	@ln -sf $(SOREAL) $(BUILD)/$(SONAME)
	@ln -sf $(SONAME) $(BUILD)/libsockit.so

$(BENCH_LIB): $(BENCH_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(BIN): $(CLI_OBJ) $(BENCH_LIB) $(LIB)
	@echo "  LINK    $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $(CLI_OBJ) $(BENCH_LIB) $(LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc/lib -Isrc/engine -Isrc/services -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS) -lcmocka

$(BUILD)/tests/test_bench_%: tests/unit/test_bench_%.c $(BENCH_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc/lib -Isrc/bench -o $@ $< $(BENCH_LIB) $(LIB) $(LDFLAGS) $(LDLIBS) -lcmocka

# For use from the build tree; `make install` writes its own with the real PREFIX.
$(BUILD)/sockit.pc: sockit.pc.in Makefile
	@mkdir -p $(dir $@)
	@sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' -e 's|@URING@|$(URING_LIBS)|g' \
	    $< > $@

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

# After installing into a system directory, run ldconfig (as root) so that
# the loader's cache knows libsockit.so.$(SOMAJOR).
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/man/man3
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/sockit
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libsockit.a
	install -m 755 $(SOLIB) $(DESTDIR)$(PREFIX)/lib/$(SOREAL)
	ln -sf $(SOREAL) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libsockit.so
	install -m 644 include/sockit.h $(DESTDIR)$(PREFIX)/include/sockit.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' -e 's|@URING@|$(URING_LIBS)|g' \
	    sockit.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/sockit.pc
	chmod 644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/sockit.pc
	install -m 644 man/sockit.1 $(DESTDIR)$(PREFIX)/share/man/man1/sockit.1
	install -m 644 man/libsockit.3 $(DESTDIR)$(PREFIX)/share/man/man3/libsockit.3

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/sockit $(DESTDIR)$(PREFIX)/lib/libsockit.a \
	    $(DESTDIR)$(PREFIX)/lib/$(SOREAL) $(DESTDIR)$(PREFIX)/lib/$(SONAME) \
	    $(DESTDIR)$(PREFIX)/lib/libsockit.so \
	    $(DESTDIR)$(PREFIX)/include/sockit.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/sockit.pc \
	    $(DESTDIR)$(PREFIX)/share/man/man1/sockit.1 $(DESTDIR)$(PREFIX)/share/man/man3/libsockit.3

fuzz:
	bash tests/fuzz/run.sh $(FUZZ_SECONDS)

# bench/run.py builds the peers and the load generator (../shared/bench/echoload.c)
# into $(BUILD)/bench itself: a peer that does not build is skipped, never fatal.
bench: all
	BUILD=$(BUILD) python3 bench/run.py $(BENCH_ARGS)

format:
	clang-format -i $(LIB_SRC) $(CLI_SRC) $(BENCH_SRC) $(EX_SRC) $(UNIT_SRC) include/*.h src/*/*.h

check-format:
	clang-format --dry-run -Werror $(LIB_SRC) $(CLI_SRC) $(BENCH_SRC) $(EX_SRC) $(UNIT_SRC) include/*.h src/*/*.h

clean:
	rm -rf build build-san

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(BENCH_OBJ:.o=.d)
