# crisp build.  `make` builds into build/; `make SAN=1` builds an ASan+UBSan
# variant into build-san/.  Every component folder's *.c files are picked up by
# wildcard; a component is a static library linked into the binaries that need it.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
LIBEXECDIR ?= $(PREFIX)/libexec/crisp

ifeq ($(SAN),1)
# The sanitizer build uses clang: a second compiler's warnings, and clang
# refuses a goto that jumps over a cleanup-attributed variable.
B ?= build-san
CC := clang
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
B ?= build
SANFLAGS :=
endif

PKGS := grpc gpr libprotobuf-c yajl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := -lgrpc -lgpr -lprotobuf-c -lyajl -lcurl -larchive -lcrypto -lseccomp -lcap -lmicrohttpd -lz
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-deprecated-declarations \
	-D_GNU_SOURCE -Ulinux -DCRISP_VERSION='"$(VERSION)"' -DCRISP_LIBEXECDIR='"$(LIBEXECDIR)"' \
	-I. -I$(B)/gen $(PKG_CFLAGS) $(SANFLAGS)
LDFLAGS += $(SANFLAGS)
LDLIBS += $(PKG_LIBS) -lpthread

# Generated protobuf-c code (never committed).
GEN_C := $(B)/gen/proto/api.pb-c.c
GEN_H := $(B)/gen/proto/api.pb-c.h

lib_SRC := $(wildcard lib/*.c)
server_SRC := $(wildcard server/*.c)
image_SRC := $(wildcard image/*.c)
network_SRC := $(wildcard network/*.c)
oci_SRC := $(wildcard oci/*.c)
stream_SRC := $(wildcard server/stream/*.c)
client_SRC := $(filter-out cmd/crispctl/main.c,$(wildcard cmd/crispctl/*.c))
crispd_SRC := $(wildcard cmd/crispd/*.c)
crispctl_SRC := cmd/crispctl/main.c

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

LIB_A := $(B)/libcrisp.a
SERVER_A := $(B)/libcrisp-server.a
IMAGE_A := $(B)/libcrisp-image.a
NETWORK_A := $(B)/libcrisp-network.a
OCI_A := $(B)/libcrisp-oci.a
STREAM_A := $(B)/libcrisp-stream.a
COMPONENTS_A := $(IMAGE_A) $(NETWORK_A) $(OCI_A) $(STREAM_A)
CLIENT_A := $(B)/libcrisp-client.a
PROTO_O := $(B)/obj/gen/api.pb-c.o

BINS := $(B)/crispd $(B)/crispctl $(B)/crisp-pause $(B)/crisp-monitor

UNIT_TESTS := $(patsubst test/unit/%.c,$(B)/test/unit/%,$(wildcard test/unit/test_*.c))
INTEG_TESTS := $(patsubst test/integration/%.c,$(B)/test/integration/%,$(wildcard test/integration/test_*.c))
INTEG_SUPPORT := $(filter-out $(wildcard test/integration/test_*.c),$(wildcard test/integration/*.c))
# Shared test fixtures (a real docker-registry, ...), linked into unit and integration tests.
FIXTURES := $(wildcard test/fixtures/*.c)

.PHONY: all deps test test-unit test-integration test-san run install clean bench
.SECONDARY:

all: $(BINS)

deps:
	@bash contrib/install-deps.sh

$(GEN_C) $(GEN_H): proto/api.proto
	@mkdir -p $(B)/gen/proto
	protoc-c --c_out=$(B)/gen -I. proto/api.proto

$(PROTO_O): $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-error -c -o $@ $<

$(B)/obj/%.o: %.c Makefile $(GEN_H) $(wildcard */*.h) $(wildcard cmd/*/*.h) $(wildcard test/*/*.h) $(wildcard server/stream/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB_A): $(call obj,$(lib_SRC))
	@rm -f $@; ar rcs $@ $^
$(SERVER_A): $(call obj,$(server_SRC))
	@rm -f $@; ar rcs $@ $^
$(IMAGE_A): $(call obj,$(image_SRC))
	@rm -f $@; ar rcs $@ $^
$(NETWORK_A): $(call obj,$(network_SRC))
	@rm -f $@; ar rcs $@ $^
$(OCI_A): $(call obj,$(oci_SRC))
	@rm -f $@; ar rcs $@ $^
$(STREAM_A): $(call obj,$(stream_SRC))
	@rm -f $@; ar rcs $@ $^
$(CLIENT_A): $(call obj,$(client_SRC))
	@rm -f $@; ar rcs $@ $^

$(B)/crispd: $(call obj,$(crispd_SRC)) $(SERVER_A) $(COMPONENTS_A) $(PROTO_O) $(LIB_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The pod infra process: static, so its rootfs needs nothing but itself.
$(B)/crisp-pause: cmd/pause/pause.c Makefile
	@mkdir -p $(dir $@)
	$(CC) -Os -s -std=gnu11 -Wall -Wextra -Werror -DCRISP_VERSION='"$(VERSION)"' -static -o $@ $<

# The per-container monitor: libc only and, outside the sanitizer build,
# static (smaller RSS than dynamic glibc: see conmon/main.c), since one runs
# beside every container.  Its unit test runs the binary.
$(B)/crisp-monitor: $(wildcard conmon/*.c) $(wildcard conmon/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(if $(filter 1,$(SAN)),$(LDFLAGS),-static) -o $@ $(wildcard conmon/*.c)
$(B)/test/unit/test_monitor: $(B)/crisp-monitor

$(B)/crispctl: $(call obj,$(crispctl_SRC)) $(CLIENT_A) $(STREAM_A) $(PROTO_O) $(LIB_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests link the components they test (plain C, no gRPC server).
$(B)/test/unit/%: test/unit/%.c $(FIXTURES) $(COMPONENTS_A) $(LIB_A) $(wildcard */*.h) $(wildcard test/fixtures/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) -o $@ $< $(FIXTURES) $(COMPONENTS_A) $(LIB_A) $(CHECK_LIBS) $(LDLIBS)

# Test image builder (test/images): writes OCI layouts from busybox-static.
$(B)/mkimage: $(wildcard test/images/*.c) $(wildcard test/images/*.h) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(wildcard test/images/*.c) $(LIB_A) $(LDLIBS)

$(B)/test/integration/%: test/integration/%.c $(INTEG_SUPPORT) $(FIXTURES) $(wildcard test/integration/*.h) $(wildcard test/fixtures/*.h) $(CLIENT_A) $(STREAM_A) $(PROTO_O) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) -o $@ $< $(INTEG_SUPPORT) $(FIXTURES) $(CLIENT_A) $(STREAM_A) $(PROTO_O) $(LIB_A) $(CHECK_LIBS) $(LDLIBS)

# `make test` is the one command CI and developers run: dependencies, the
# normal build and its tests, then the sanitizer build and its tests.
test: deps
	@mkdir -p build && rm -f build/test-results.txt
	@$(MAKE) --no-print-directory CRISP_RESULTS=$(abspath build/test-results.txt) test-unit test-integration
	@$(MAKE) --no-print-directory SAN=1 CRISP_RESULTS=$(abspath build/test-results.txt) test-unit test-integration
	@awk '{p+=$$2; f+=$$3} END {printf "total: %d passed, %d failed\n", p, f; exit f > 0}' build/test-results.txt

test-unit: $(UNIT_TESTS) $(if $(wildcard test/images/*.c),$(B)/mkimage)
	@CRISP_BIN_DIR=$(abspath $(B)) bash test/run-suites.sh unit $(UNIT_TESTS)

test-integration: $(BINS) $(INTEG_TESTS) $(if $(wildcard test/images/*.c),$(B)/mkimage)
	@CRISP_BIN_DIR=$(abspath $(B)) bash test/run-suites.sh integration $(INTEG_TESTS)

# Benchmarks print figures; they assert nothing and are not part of `make test`.
$(B)/bench-pods: test/bench/bench_pods.c $(CLIENT_A) $(PROTO_O) $(LIB_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CLIENT_A) $(PROTO_O) $(LIB_A) $(LDLIBS)
$(B)/bench-containers: test/bench/bench_containers.c $(CLIENT_A) $(PROTO_O) $(LIB_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CLIENT_A) $(PROTO_O) $(LIB_A) $(LDLIBS)

$(B)/bench-stats: test/bench/bench_stats.c test/bench/bench.h $(CLIENT_A) $(PROTO_O) $(LIB_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CLIENT_A) $(PROTO_O) $(LIB_A) $(LDLIBS)

$(B)/bench-exec: test/bench/bench_exec.c test/bench/bench.h $(CLIENT_A) $(STREAM_A) $(PROTO_O) $(LIB_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CLIENT_A) $(STREAM_A) $(PROTO_O) $(LIB_A) $(LDLIBS)

bench: all $(B)/mkimage $(B)/bench-pods $(B)/bench-containers $(B)/bench-stats $(B)/bench-exec
	bash test/bench/pull.sh
	bash test/bench/pods.sh
	B=$(B) bash test/bench/containers.sh
	B=$(B) bash test/bench/stats.sh
	B=$(B) bash test/bench/exec.sh

run: deps all
	exec $(B)/crispd $(CRISPD_FLAGS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(SYSCONFDIR)/crisp/crisp.conf.d
	install -m 0755 $(B)/crispd $(B)/crispctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(B)/crisp-pause $(B)/crisp-monitor $(DESTDIR)$(LIBEXECDIR)/
	@for f in crisp/crisp.conf:contrib/crisp.conf crictl.yaml:contrib/crictl.yaml; do \
		dst=$(DESTDIR)$(SYSCONFDIR)/$${f%%:*}; src=$${f#*:}; \
		if [ -e "$$dst" ]; then echo "keeping existing $$dst"; \
		else install -D -m 0644 "$$src" "$$dst"; echo "installed $$dst"; fi; \
	done

clean:
	rm -rf build build-san
