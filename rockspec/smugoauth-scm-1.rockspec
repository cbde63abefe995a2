-- LuaRocks: luarocks --lua-version 5.4 make rockspec/smugoauth-scm-1.rockspec
rockspec_format = "3.0"
package = "smugoauth"
version = "scm-1"
source = {
  url = "git+https://example.invalid/smugoauth.git",
}
description = {
  summary = "OAuth 1.0a (C core: OpenSSL + libcurl) and quick scripting of the SmugMug API v2",
  detailed = [[
smugoauth signs OAuth 1.0a requests exactly as RFC 5849 says (HMAC-SHA1/256/512,
PLAINTEXT, RSA-SHA1) in a C core, talks HTTP through libcurl with TLS verification
always on, and gives Lua scripts the SmugMug flows (console and web), a signed API
session with retries, paging, uploads and parallel calls, and a `smugoauth` command.
]],
  license = "MIT",
  labels = { "oauth", "smugmug", "http", "curl", "openssl" },
}
dependencies = {
  "lua >= 5.4",
  "luasocket >= 3.0",
  "lua-cjson >= 2.1",
  "luasql-sqlite3 >= 2.6",      -- the manifests of sync and backup
}
external_dependencies = {
  -- No header check: Debian keeps curl's headers under the multiarch include
  -- directory, which the compiler searches by itself.
  CURL = { library = "curl" },
  OPENSSL = { library = "crypto" },
}
build = {
  type = "builtin",
  modules = {
    ["smugoauth.core"] = {
      sources = {
        -- csrc/lib: plain C units (no Lua); csrc/lua: the Lua bindings
        "csrc/lib/buf.c", "csrc/lib/cookie.c", "csrc/lib/encode.c", "csrc/lib/nonce.c",
        "csrc/lib/oauth.c", "csrc/lib/privfile.c", "csrc/lib/sigmethod.c", "csrc/lib/sink.c",
        "csrc/lib/sslerr.c", "csrc/lib/url.c",
        "csrc/lua/auxiliar.c", "csrc/lua/core.c", "csrc/lua/http.c",
        "csrc/lua/http_xfer.c", "csrc/lua/lcookie.c", "csrc/lua/lcrypto.c", "csrc/lua/lfile.c", "csrc/lua/lloop.c",
        "csrc/lua/lsign.c", "csrc/lua/lsigner.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "curl", "ssl", "crypto" },
      incdirs = { "csrc/lib", "csrc/lua", "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)" },
    },
    ["smugoauth"] = "lua/smugoauth.lua",
    ["smugoauth.apps.callback"] = "lua/smugoauth/apps/callback.lua",
    ["smugoauth.apps.cli"] = "lua/smugoauth/apps/cli/init.lua",
    ["smugoauth.apps.cli.api"] = "lua/smugoauth/apps/cli/api.lua",
    ["smugoauth.apps.cli.backup"] = "lua/smugoauth/apps/cli/backup.lua",
    ["smugoauth.apps.cli.completion"] = "lua/smugoauth/apps/cli/completion.lua",
    ["smugoauth.apps.cli.config"] = "lua/smugoauth/apps/cli/config.lua",
    ["smugoauth.apps.cli.context"] = "lua/smugoauth/apps/cli/context.lua",
    ["smugoauth.apps.cli.doc"] = "lua/smugoauth/apps/cli/doc.lua",
    ["smugoauth.apps.cli.login"] = "lua/smugoauth/apps/cli/login.lua",
    ["smugoauth.apps.cli.output"] = "lua/smugoauth/apps/cli/output.lua",
    ["smugoauth.apps.cli.progress"] = "lua/smugoauth/apps/cli/progress.lua",
    ["smugoauth.apps.cli.sync"] = "lua/smugoauth/apps/cli/sync.lua",
    ["smugoauth.apps.cli.upload"] = "lua/smugoauth/apps/cli/upload.lua",
    ["smugoauth.apps.sandbox"] = "lua/smugoauth/apps/sandbox/init.lua",
    ["smugoauth.apps.sandbox.api"] = "lua/smugoauth/apps/sandbox/api.lua",
    ["smugoauth.apps.sandbox.archive"] = "lua/smugoauth/apps/sandbox/archive.lua",
    ["smugoauth.apps.sandbox.content"] = "lua/smugoauth/apps/sandbox/content.lua",
    ["smugoauth.apps.sandbox.control"] = "lua/smugoauth/apps/sandbox/control.lua",
    ["smugoauth.apps.sandbox.faults"] = "lua/smugoauth/apps/sandbox/faults.lua",
    ["smugoauth.apps.sandbox.fixtures"] = "lua/smugoauth/apps/sandbox/fixtures.lua",
    ["smugoauth.apps.sandbox.images"] = "lua/smugoauth/apps/sandbox/images.lua",
    ["smugoauth.apps.sandbox.launch"] = "lua/smugoauth/apps/sandbox/launch.lua",
    ["smugoauth.apps.sandbox.nodes"] = "lua/smugoauth/apps/sandbox/nodes.lua",
    ["smugoauth.apps.sandbox.oauth"] = "lua/smugoauth/apps/sandbox/oauth.lua",
    ["smugoauth.apps.sandbox.reply"] = "lua/smugoauth/apps/sandbox/reply.lua",
    ["smugoauth.apps.web"] = "lua/smugoauth/apps/web.lua",
    ["smugoauth.apps.web.render"] = "lua/smugoauth/apps/web/render.lua",
    ["smugoauth.apps.web.routes"] = "lua/smugoauth/apps/web/routes.lua",
    ["smugoauth.backup.apply"] = "lua/smugoauth/backup/apply.lua",
    ["smugoauth.backup.manifest"] = "lua/smugoauth/backup/manifest.lua",
    ["smugoauth.backup.names"] = "lua/smugoauth/backup/names.lua",
    ["smugoauth.backup.plan"] = "lua/smugoauth/backup/plan.lua",
    ["smugoauth.backup.run"] = "lua/smugoauth/backup/run.lua",
    ["smugoauth.backup.walk"] = "lua/smugoauth/backup/walk.lua",
    ["smugoauth.cli"] = "lua/smugoauth/cli.lua",
    ["smugoauth.client"] = "lua/smugoauth/client.lua",
    ["smugoauth.config"] = "lua/smugoauth/config.lua",
    ["smugoauth.credentials"] = "lua/smugoauth/credentials.lua",
    ["smugoauth.download"] = "lua/smugoauth/download.lua",
    ["smugoauth.errors"] = "lua/smugoauth/errors.lua",
    ["smugoauth.http.budget"] = "lua/smugoauth/http/budget.lua",
    ["smugoauth.http.chunked"] = "lua/smugoauth/http/chunked.lua",
    ["smugoauth.http.codec"] = "lua/smugoauth/http/codec.lua",
    ["smugoauth.http.connection"] = "lua/smugoauth/http/connection.lua",
    ["smugoauth.http.cookie"] = "lua/smugoauth/http/cookie.lua",
    ["smugoauth.http.grammar"] = "lua/smugoauth/http/grammar.lua",
    ["smugoauth.http.html"] = "lua/smugoauth/http/html.lua",
    ["smugoauth.http.request"] = "lua/smugoauth/http/request.lua",
    ["smugoauth.http.server"] = "lua/smugoauth/http/server.lua",
    ["smugoauth.http.tasks"] = "lua/smugoauth/http/tasks.lua",
    ["smugoauth.http.writer"] = "lua/smugoauth/http/writer.lua",
    ["smugoauth.httpd"] = "lua/smugoauth/httpd.lua",
    ["smugoauth.json"] = "lua/smugoauth/json.lua",
    ["smugoauth.loop"] = "lua/smugoauth/loop/init.lua",
    ["smugoauth.loop.limit"] = "lua/smugoauth/loop/limit.lua",
    ["smugoauth.loop.queue"] = "lua/smugoauth/loop/queue.lua",
    ["smugoauth.loop.scheduler"] = "lua/smugoauth/loop/scheduler.lua",
    ["smugoauth.loop.task"] = "lua/smugoauth/loop/task.lua",
    ["smugoauth.loop.timers"] = "lua/smugoauth/loop/timers.lua",
    ["smugoauth.loop.waits"] = "lua/smugoauth/loop/waits.lua",
    ["smugoauth.many"] = "lua/smugoauth/many.lua",
    ["smugoauth.pages"] = "lua/smugoauth/pages.lua",
    ["smugoauth.request"] = "lua/smugoauth/request.lua",
    ["smugoauth.response"] = "lua/smugoauth/response.lua",
    ["smugoauth.retry"] = "lua/smugoauth/retry.lua",
    ["smugoauth.sandbox"] = "lua/smugoauth/sandbox.lua",
    ["smugoauth.session"] = "lua/smugoauth/session.lua",
    ["smugoauth.sqlite"] = "lua/smugoauth/sqlite.lua",
    ["smugoauth.sync"] = "lua/smugoauth/sync/init.lua",
    ["smugoauth.sync.hash"] = "lua/smugoauth/sync/hash.lua",
    ["smugoauth.sync.manifest"] = "lua/smugoauth/sync/manifest.lua",
    ["smugoauth.sync.plan"] = "lua/smugoauth/sync/plan.lua",
    ["smugoauth.sync.remote"] = "lua/smugoauth/sync/remote.lua",
    ["smugoauth.sync.run"] = "lua/smugoauth/sync/run.lua",
    ["smugoauth.sync.scan"] = "lua/smugoauth/sync/scan.lua",
    ["smugoauth.trace"] = "lua/smugoauth/trace.lua",
    ["smugoauth.upload"] = "lua/smugoauth/upload.lua",
    ["smugoauth.util"] = "lua/smugoauth/util.lua",
    ["smugoauth.webapp"] = "lua/smugoauth/webapp.lua",
  },
  install = { bin = { smugoauth = "bin/smugoauth" } },
  -- The man page and the bash and zsh completion scripts (make generated).
  -- LuaRocks 3 deploys only bin, lua and lib into a tree: install.conf files
  -- and copy_directories both stay in the rock's own folder
  -- (TREE/lib/luarocks/rocks-5.4/smugoauth/VERSION/man, .../completions; see
  -- `luarocks show smugoauth`), never in share/man or share/bash-completion,
  -- so they are shipped here for the user or the packager to link.
  copy_directories = { "completions", "man" },
}
test = {
  type = "command",
  command = "make test",
}
