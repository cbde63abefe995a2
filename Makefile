# smugoauth -- build, test, install, benchmark.
#   make            build build/smugoauth/core.so
#   make test       install missing Debian packages, build, run every spec
#   make demo       the console OAuth flow end to end against the local sandbox
#   make install    install into the system Lua 5.4 tree (PREFIX, DESTDIR)

LUA          ?= lua5.4
LUA_PC       ?= lua5.4
PKG_CONFIG   ?= pkg-config
CC           ?= cc
PREFIX       ?= /usr/local
LUA_LIBDIR   ?= $(PREFIX)/lib/lua/5.4
LUA_SHAREDIR ?= $(PREFIX)/share/lua/5.4
BINDIR       ?= $(PREFIX)/bin
BUSTED       ?= $(LUA) /usr/bin/busted

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(LUA_PC) libcurl openssl 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs libcurl openssl 2>/dev/null)

WARN    = -Wall -Wextra -pedantic -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
          -Wpointer-arith -Wcast-qual -Wformat=2 -Wundef
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden \
             $(WARN) $(CFLAGS) $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS_SO = -shared $(LDFLAGS) $(EXTRA_LDFLAGS)

BUILD  ?= build
SRCS   := $(wildcard csrc/*.c)
OBJS   := $(SRCS:csrc/%.c=$(BUILD)/obj/%.o)
MODULE := $(BUILD)/smugoauth/core.so

.PHONY: all deps test lint check asan valgrind bench install uninstall demo console web clean rock-check sandbox

all: $(MODULE)

$(BUILD)/obj/%.o: csrc/%.c csrc/smugoauth.h csrc/lcore.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(MODULE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(OBJS) -o $@ $(LDFLAGS_SO) $(PKG_LIBS)

# Install the Debian packages the build and the specs need (once; no-op after).
deps:
	@sh .ci/deps.sh

test: deps all
	$(BUSTED) $(BUSTED_ARGS)

lint: deps
	luacheck --no-color lua examples spec bench

check: lint test

clean:
	rm -rf $(BUILD)

install: all
	install -d $(DESTDIR)$(LUA_LIBDIR)/smugoauth $(DESTDIR)$(LUA_SHAREDIR)/smugoauth
	install -m 0755 $(MODULE) $(DESTDIR)$(LUA_LIBDIR)/smugoauth/core.so
	install -m 0644 lua/smugoauth.lua $(DESTDIR)$(LUA_SHAREDIR)/smugoauth.lua
	install -m 0644 lua/smugoauth/*.lua $(DESTDIR)$(LUA_SHAREDIR)/smugoauth/

uninstall:
	rm -rf $(DESTDIR)$(LUA_LIBDIR)/smugoauth $(DESTDIR)$(LUA_SHAREDIR)/smugoauth \
	       $(DESTDIR)$(LUA_SHAREDIR)/smugoauth.lua

$(BUILD)/bench/hmac_floor: bench/hmac_floor.c
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L -O2 $(WARN) $< -o $@ $(PKG_CFLAGS) -lcrypto

# Side-by-side benchmarks (one run each; figures printed as ratios).
bench: deps all $(BUILD)/bench/hmac_floor
	$(LUA) bench/sign.lua $(BENCH_SECONDS)

# The console flow end to end against the local sandbox (no input needed).
demo: deps all
	@$(LUA) examples/demo.lua

# The console flow against the provider named by the config (SMUGOAUTH_CONFIG or ./config.json).
console: all
	@$(LUA) examples/console.lua

# The local SmugMug sandbox on its own (prints its port).
sandbox: all
	@$(LUA) examples/sandbox.lua $(SANDBOX_ARGS)

# Install with LuaRocks into a throw-away tree and load the module from it.
rock-check: deps
	@rm -rf $(BUILD)/rocktree
	luarocks --lua-version 5.4 make --tree $(BUILD)/rocktree --deps-mode=none rockspec/smugoauth-scm-1.rockspec >/dev/null
	cd / && LUA_PATH="$(CURDIR)/$(BUILD)/rocktree/share/lua/5.4/?.lua;;" \
	  LUA_CPATH="$(CURDIR)/$(BUILD)/rocktree/lib/lua/5.4/?.so;;" \
	  $(LUA) -e 'local s = require "smugoauth"; assert(package.searchpath("smugoauth.core", package.cpath):find("rocktree")); print("rockspec: installed " .. s._VERSION .. ", loads")'

# The web flow (examples/web.lua) on 127.0.0.1:8090 (WEB_ARGS="--port N" to change).
web: all
	@$(LUA) examples/web.lua $(WEB_ARGS)
