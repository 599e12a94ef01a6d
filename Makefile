# modelhub — see README.md. `make run` and `make test` are the two entry points.
CC      ?= cc
PKGS    := libmicrohttpd libgit2 sqlite3 jansson libcrypto libsodium yaml-0.1 libcmark-gfm zlib liblz4 libcurl libclamav libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcmark-gfm-extensions -lpthread -lm
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wvla
CFLAGS  ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -Isrc $(PKG_CFLAGS) $(CFLAGS)
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_SAN:= -fsanitize=address,undefined -fno-sanitize-recover=undefined

SRC      := $(sort $(wildcard src/*/*.c))
OBJ      := $(SRC:%.c=build/obj/%.o)
ASAN_OBJ := $(SRC:%.c=build/asan/obj/%.o)
UNIT     := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT:tests/unit/%.c=build/unit/%)
UNIT_ASAN:= $(UNIT:tests/unit/%.c=build/asan/unit/%)
FUZZ     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ:tests/fuzz/%.c=build/fuzz/%)

# --- BLAKE3 (Xet hashes, src/xet/). The reference C implementation that Debian's
# librust-blake3-dev installs, compiled from there (not vendored), portable build (no SIMD).
BLAKE3_DIR  := $(or $(firstword $(wildcard /usr/share/cargo/registry/blake3-*/c)),/usr/share/cargo/registry/blake3-MISSING-run-make-deps/c)
BLAKE3_SRC  := blake3.c blake3_dispatch.c blake3_portable.c
BLAKE3_DEFS := -DBLAKE3_NO_SSE2 -DBLAKE3_NO_SSE41 -DBLAKE3_NO_AVX2 -DBLAKE3_NO_AVX512
BLAKE3_OBJ      := $(BLAKE3_SRC:%.c=build/blake3/obj/%.o)
BLAKE3_ASAN_OBJ := $(BLAKE3_SRC:%.c=build/blake3/asan/%.o)
BLAKE3_FUZZ_OBJ := $(BLAKE3_SRC:%.c=build/blake3/fuzz/%.o)
ALL_CFLAGS  += -I$(BLAKE3_DIR)
OBJ         += $(BLAKE3_OBJ)
ASAN_OBJ    += $(BLAKE3_ASAN_OBJ)
build/blake3/obj/%.o: $(BLAKE3_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(BLAKE3_DEFS) $(CFLAGS) -c $< -o $@
build/blake3/asan/%.o: $(BLAKE3_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(BLAKE3_DEFS) $(CFLAGS) -O1 $(SAN) -c $< -o $@
build/blake3/fuzz/%.o: $(BLAKE3_DIR)/%.c
	@mkdir -p $(dir $@)
	clang -std=c11 $(BLAKE3_DEFS) -g -O1 $(FUZZ_SAN) -c $< -o $@
# --- end BLAKE3

.PHONY: all deps run test unit fuzz asan clean format e2e-deps
all: build/modelhub

deps:
	@sh scripts/deps.sh

build/obj/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

build/asan/obj/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -c $< -o $@

build/modelhub: build/obj/src/main.o $(OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PKG_LIBS)

build/asan/modelhub: build/asan/obj/src/main.o $(ASAN_OBJ)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -o $@ $^ $(PKG_LIBS)

build/unit/%: tests/unit/%.c $(OBJ) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(OBJ) $(PKG_LIBS) -lcmocka

build/asan/unit/%: tests/unit/%.c $(ASAN_OBJ) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -Itests/unit -o $@ $< $(ASAN_OBJ) $(PKG_LIBS) -lcmocka

# libFuzzer harnesses need clang; the library is compiled once with coverage
# instrumentation and each harness links it (minus main). Undefined behaviour aborts
# whatever UBSAN_OPTIONS says (-fno-sanitize-recover), like the ASan build's $(SAN).
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -I$(BLAKE3_DIR) $(PKG_CFLAGS) $(FUZZ_SAN)
FUZZ_OBJ := $(SRC:%.c=build/fuzzobj/%.o) $(BLAKE3_FUZZ_OBJ)
.SECONDARY: $(FUZZ_OBJ) # only prerequisites of a pattern rule: keep them between builds
build/fuzzobj/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(PKG_LIBS)

asan: build/asan/modelhub
unit: $(UNIT_BIN) $(UNIT_ASAN)
fuzz: $(FUZZ_BIN)

# The build runs in a sub-make: pkg-config flags and the BLAKE3 path are read when the
# Makefile is parsed, which on a fresh machine is before `deps` installed anything.
run: deps
	@$(MAKE) --no-print-directory build/modelhub
	./build/modelhub serve --listen 127.0.0.1:8080 --data ./data

e2e-deps:
	@cd tests/e2e && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; }

test: deps
	@$(MAKE) --no-print-directory -j2 build/modelhub build/asan/modelhub $(UNIT_BIN) $(UNIT_ASAN) $(FUZZ_BIN)
	@$(MAKE) --no-print-directory e2e-deps
	@sh scripts/test.sh

format:
	clang-format -i src/*.c src/*/*.c src/*/*.h tests/unit/*.c tests/unit/*.h tests/fuzz/*.c

clean:
	rm -rf build
