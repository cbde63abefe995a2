# smugoauth -- build, test, install, benchmark.
#   make            build build/smugoauth/core.so
#   make test       install missing Debian packages, build, run every spec
#   make demo       the console OAuth flow end to end against the local sandbox
#   make install    install into the system Lua 5.4 tree (PREFIX, DESTDIR)
#   make docs       the API reference from the doc comments in build/docs/ (LDoc)
#   make generated  rewrite the completion scripts and the man page from the command

LUA          ?= lua5.4
LUA_PC       ?= lua5.4
PKG_CONFIG   ?= pkg-config
CC           ?= cc
PREFIX       ?= /usr/local
LUA_LIBDIR   ?= $(PREFIX)/lib/lua/5.4
LUA_SHAREDIR ?= $(PREFIX)/share/lua/5.4
BINDIR       ?= $(PREFIX)/bin
MANDIR       ?= $(PREFIX)/share/man
BASHCOMPDIR  ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR   ?= $(PREFIX)/share/zsh/site-functions
BUSTED       ?= $(LUA) /usr/bin/busted

# Lazily expanded (=, not :=): on a fresh machine the packages that provide
# them are installed by `make deps` after this Makefile has been read.
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(LUA_PC) libcurl openssl 2>/dev/null)
PKG_LIBS   = $(shell $(PKG_CONFIG) --libs libcurl openssl 2>/dev/null)

WARN    = -Wall -Wextra -pedantic -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
          -Wpointer-arith -Wcast-qual -Wformat=2 -Wundef
CFLAGS ?= -O2 -g
# csrc/lib: plain C units (no Lua); csrc/lua: the Lua bindings over them.
INCLUDES   = -Icsrc/lib -Icsrc/lua
ALL_CFLAGS = -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden \
             $(WARN) $(CFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS_SO = -shared $(LDFLAGS) $(EXTRA_LDFLAGS)

BUILD  ?= build
SRCS   := $(wildcard csrc/lib/*.c csrc/lua/*.c)
HDRS   := $(wildcard csrc/lib/*.h csrc/lua/*.h)
OBJS   := $(SRCS:csrc/%.c=$(BUILD)/obj/%.o)
MODULE := $(BUILD)/smugoauth/core.so

.PHONY: all deps test lint docs check asan valgrind bench install uninstall demo console web clean rock-check sandbox fuzz \
        generated

all: $(MODULE)

$(BUILD)/obj/%.o: csrc/%.c $(HDRS)
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
	luacheck --no-color lua examples spec bench bin/smugoauth

# The API reference from the doc comments (LDoc, config.ld) in $(BUILD)/docs/.
# Fails on any LDoc warning (a doc comment it cannot parse) and when a
# module under lua/smugoauth/ is not listed in config.ld.
docs: deps
	@for f in lua/smugoauth/*; do \
	  grep -qF -e "\"$$f\"" -e "\"$$f/" config.ld || \
	  { echo "docs: $$f is not listed in config.ld" >&2; exit 1; }; done
	@rm -rf $(BUILD)/docs
	ldoc --fatalwarnings -d $(BUILD)/docs .

check: lint test

# The files the command writes from its own command and option tables and help
# texts: the bash and zsh completion scripts and the man page. They are kept in
# the tree (for make install and the rockspec); spec/apps/cli_docs_spec.lua
# fails when they are not what the command prints now.
GENERATED = completions/smugoauth.bash completions/_smugoauth man/smugoauth.1
generated: all
	@mkdir -p completions man
	$(LUA) bin/smugoauth completion bash > completions/smugoauth.bash.tmp
	$(LUA) bin/smugoauth completion zsh > completions/_smugoauth.tmp
	$(LUA) bin/smugoauth help --man > man/smugoauth.1.tmp
	@for f in $(GENERATED); do mv "$$f.tmp" "$$f"; done

clean:
	rm -rf $(BUILD)

install: all
	install -d $(DESTDIR)$(LUA_LIBDIR)/smugoauth $(DESTDIR)$(LUA_SHAREDIR)/smugoauth
	install -m 0755 $(MODULE) $(DESTDIR)$(LUA_LIBDIR)/smugoauth/core.so
	install -m 0644 lua/smugoauth.lua $(DESTDIR)$(LUA_SHAREDIR)/smugoauth.lua
	# every module under lua/smugoauth/, its folders (http/, apps/, ...) kept
	cd lua && for f in $$(find smugoauth -name '*.lua' | sort); do \
	  install -D -m 0644 "$$f" "$(DESTDIR)$(LUA_SHAREDIR)/$$f" || exit 1; done
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 bin/smugoauth $(DESTDIR)$(BINDIR)/smugoauth
	# the man page and the completion scripts (make generated writes them)
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0644 man/smugoauth.1 $(DESTDIR)$(MANDIR)/man1/smugoauth.1
	install -m 0644 completions/smugoauth.bash $(DESTDIR)$(BASHCOMPDIR)/smugoauth
	install -m 0644 completions/_smugoauth $(DESTDIR)$(ZSHCOMPDIR)/_smugoauth

uninstall:
	rm -rf $(DESTDIR)$(LUA_LIBDIR)/smugoauth $(DESTDIR)$(LUA_SHAREDIR)/smugoauth \
	       $(DESTDIR)$(LUA_SHAREDIR)/smugoauth.lua $(DESTDIR)$(BINDIR)/smugoauth \
	       $(DESTDIR)$(MANDIR)/man1/smugoauth.1 $(DESTDIR)$(BASHCOMPDIR)/smugoauth \
	       $(DESTDIR)$(ZSHCOMPDIR)/_smugoauth

$(BUILD)/bench/hmac_floor: bench/hmac_floor.c
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L -O2 $(WARN) $< -o $@ $(PKG_CFLAGS) -lcrypto

$(BUILD)/bench/fastserver: bench/support/fastserver.c
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -D_GNU_SOURCE -O2 $(WARN) $< -o $@

# Side-by-side benchmarks, one run each; every figure is also recorded and
# bench/report.lua writes bench/out/report.md and bench/out/report.png.
BENCH_OUT = bench/out/results.jsonl
bench: deps all $(BUILD)/bench/hmac_floor $(BUILD)/bench/fastserver
	@mkdir -p bench/out && rm -f $(BENCH_OUT)
	BENCH_OUT=$(BENCH_OUT) $(LUA) bench/sign.lua $(BENCH_SECONDS)
	BENCH_OUT=$(BENCH_OUT) $(LUA) bench/http.lua $(BENCH_SECONDS)
	BENCH_OUT=$(BENCH_OUT) BENCH_PLACEMENT=same $(LUA) bench/http.lua $(BENCH_SECONDS)
	BENCH_OUT=$(BENCH_OUT) $(LUA) bench/many.lua
	BENCH_OUT=$(BENCH_OUT) $(LUA) bench/upload.lua
	BENCH_OUT=$(BENCH_OUT) $(LUA) bench/web.lua 5 3
	BENCH_OUT=$(BENCH_OUT) $(LUA) bench/loop.lua
	# (last: they write and delete gigabytes, whose writeback would disturb
	# the latency measures of web and loop)
	BENCH_OUT=$(BENCH_OUT) $(LUA) bench/sync.lua
	BENCH_OUT=$(BENCH_OUT) $(LUA) bench/backup.lua
	$(LUA) bench/report.lua $(BENCH_OUT) bench/out

# The console flow end to end against the local sandbox (no input needed).
demo: deps all
	@$(LUA) examples/demo.lua

# The console flow against the provider named by the config (SMUGOAUTH_CONFIG, ./config.json, or
# $XDG_CONFIG_HOME/smugoauth/config.json: see smugoauth.config).
console: all
	@$(LUA) examples/console.lua

# The local SmugMug sandbox on its own (prints its port).
sandbox: all
	@$(LUA) examples/sandbox.lua $(SANDBOX_ARGS)

# Install with LuaRocks into a throw-away tree and load the module from it.
rock-check: deps
	$(LUA) tools/rockspec_check.lua rockspec/smugoauth-scm-1.rockspec
	@rm -rf $(BUILD)/rocktree
	luarocks --lua-version 5.4 make --tree $(BUILD)/rocktree --deps-mode=none rockspec/smugoauth-scm-1.rockspec >/dev/null
	@for f in man/smugoauth.1 completions/smugoauth.bash completions/_smugoauth; do \
	  cmp -s "$$f" "$(BUILD)/rocktree/lib/luarocks/rocks-5.4/smugoauth/scm-1/$$f" || \
	  { echo "rock-check: $$f is not shipped" >&2; exit 1; }; done
	cd / && LUA_PATH="$(CURDIR)/$(BUILD)/rocktree/share/lua/5.4/?.lua;$(CURDIR)/$(BUILD)/rocktree/share/lua/5.4/?/init.lua;;" \
	  LUA_CPATH="$(CURDIR)/$(BUILD)/rocktree/lib/lua/5.4/?.so;;" \
	  $(LUA) -e 'local s = require "smugoauth"; assert(package.searchpath("smugoauth.core", package.cpath):find("rocktree")); print("rockspec: installed " .. s._VERSION .. ", loads")'
	cd / && LUA_PATH="$(CURDIR)/$(BUILD)/rocktree/share/lua/5.4/?.lua;$(CURDIR)/$(BUILD)/rocktree/share/lua/5.4/?/init.lua;;" \
	  LUA_CPATH="$(CURDIR)/$(BUILD)/rocktree/lib/lua/5.4/?.so;;" $(CURDIR)/$(BUILD)/rocktree/bin/smugoauth --version

# The web flow (examples/web.lua) on 127.0.0.1:8090 (WEB_ARGS="--port N" to change).
web: all
	@$(LUA) examples/web.lua $(WEB_ARGS)

# The whole spec suite under valgrind's memcheck (specs run in this process:
# --ignore-lua stops busted re-executing itself outside valgrind).
# (abuse_spec is left out: it exercises a server child, which does not run
# under valgrind, and its byte-by-byte client is timed.)
VALGRIND_SPECS ?= spec --exclude-pattern=abuse_spec
valgrind: deps all
	SMUGOAUTH_SLOW=3 valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
	  --suppressions=.ci/valgrind.supp --num-callers=30 \
	  $(LUA) /usr/bin/busted --ignore-lua $(VALGRIND_SPECS)

# The whole spec suite with the C core built with AddressSanitizer and
# UndefinedBehaviorSanitizer, run by an instrumented Lua host (tools/luahost.c)
# so nothing has to be preloaded into the child processes the specs start.
ASAN_BUILD = build-asan
ASAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
$(ASAN_BUILD)/luahost: tools/luahost.c
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -O1 -g $(ASAN_FLAGS) $(WARN) $< -o $@ $(PKG_CFLAGS) \
	  $$($(PKG_CONFIG) --libs $(LUA_PC)) -Wl,-E -ldl -lm
asan: deps $(ASAN_BUILD)/luahost
	$(MAKE) BUILD=$(ASAN_BUILD) CFLAGS="-O1 -g" EXTRA_CFLAGS="$(ASAN_FLAGS)" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" all
	ASAN_OPTIONS=detect_leaks=1:exitcode=98 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/.ci/lsan.supp \
	  $(ASAN_BUILD)/luahost /usr/bin/busted --ignore-lua --cpath="$(ASAN_BUILD)/?.so" $(ASAN_SPECS)
ASAN_SPECS ?= spec

# The libFuzzer targets in fuzz/ (clang; one after another, FUZZ_SECONDS each).
FUZZ_SECONDS ?= 20
fuzz: deps
	sh fuzz/run.sh $(FUZZ_SECONDS)
