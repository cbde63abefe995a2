-- The documentation the `smugoauth` command writes from its own tables: the
-- help texts document every option (and no other), the bash and zsh
-- completion scripts and the man page in the tree are what the command
-- prints now, the scripts parse (bash -n, zsh -n) and complete every command,
-- option and value when a shell really runs them, and the man page renders
-- with man -l without a warning. No network; every child is bounded.
local cli = require "smugoauth.apps.cli"
local doc = require "smugoauth.apps.cli.doc"
local files = require "support.files"
local proc = require "support.proc"

local q = proc.q
local read_file, write_file, tmpdir = files.read_file, files.write_file, files.tmpdir

local BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"

local function pwd()
  local p = assert(io.popen("pwd"))
  local s = p:read("l")
  p:close()
  return s
end
local ROOT = pwd()

-- cli.main in-process: status, stdout, stderr.
local function call(argv)
  local out, err = {}, {}
  local function sink(t)
    return { write = function(self, ...)
      for i = 1, select("#", ...) do t[#t + 1] = tostring((select(i, ...))) end
      return self
    end, flush = function() end }
  end
  local rc = cli.main(argv, { stdout = sink(out), stderr = sink(err), getenv = function() end,
                              isatty = function() return false end })
  return rc, table.concat(out), table.concat(err)
end

-- The lines of s as a set.
local function set_of(s)
  local t = {}
  for line in s:gmatch("[^\n]+") do t[line] = true end
  return t
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- Every option name a command accepts (the global ones too), as a set.
local function all_options(describe, cmd)
  local t = {}
  for _, g in ipairs(doc.options_of(describe, cmd)) do
    for _, n in ipairs(g.names) do t[n] = true end
  end
  return t
end

local function is_installed(cmd)
  return os.execute("command -v " .. cmd .. " >/dev/null 2>&1") == true
end

describe("smugoauth documentation", function()
  local describe_cli = cli.describe()

  describe("help texts", function()
    it("list every command, each with a summary and a usage line", function()
      local names = {}
      for _, cmd in ipairs(describe_cli.commands) do
        names[#names + 1] = cmd.name
        assert.is_string(cmd.summary)
        assert.matches("^usage: smugoauth " .. cmd.name:gsub("%p", "%%%0"), cmd.help)
      end
      table.sort(names)
      assert.same(sorted_keys(cli.COMMANDS), names)
      for _, want in ipairs { "config", "completion", "help", "login" } do
        assert.is_table(cli.COMMANDS[want])
      end
    end)

    it("document every option of every command, and no option the command does not take", function()
      for _, cmd in ipairs(describe_cli.commands) do
        for _, g in ipairs(doc.options_of(describe_cli, cmd)) do
          assert(g.desc and g.desc ~= "", cmd.name .. ": " .. table.concat(g.names, ", ") ..
            " is not in an Options: list of its help")
          if g.arg then assert(g.value, cmd.name .. ": the value of " .. g.names[1] .. " has no name") end
        end
        local takes = all_options(describe_cli, cmd)
        for name in pairs(doc.option_docs(cmd.help)) do
          assert(takes[name], cmd.name .. ": its help documents " .. name .. ", which it does not take")
        end
      end
      for name in pairs(doc.option_docs(describe_cli.global_help)) do
        assert(describe_cli.global[name], "the global help documents " .. name .. ", not a global option")
      end
    end)

    it("are read back into usage, text, lists and their options", function()
      local blocks = doc.parse([[
usage: smugoauth x A
       [--b B]
       smugoauth x --c

One line
and another.

Options:
  -q, --query N=V   a query
                    (repeatable)
  --flag            a flag
]])
      assert.same({ "smugoauth x A [--b B]", "smugoauth x --c" }, blocks[1].synopses)
      assert.same({ kind = "text", text = "One line and another." }, blocks[2])
      assert.equal("Options:", blocks[3].title)
      assert.same({ term = "-q, --query N=V", desc = "a query (repeatable)" }, blocks[3].items[1])
      local names, value = doc.term_options("-q, --query N=V")
      assert.same({ "-q", "--query" }, names)
      assert.equal("N=V", value)
      assert.is_nil(doc.term_options("$HOME/x"))
      assert.equal("a flag", doc.option_docs("Options:\n  --flag   a flag\n")["--flag"].desc)
      assert.same({}, doc.option_docs("Files:\n  --flag   not an option list\n"))
    end)

    it("escape for roff: option dashes are minus signs, hyphens stay, no control line", function()
      assert.equal("\\-\\-web and six-digit, x-www", doc.esc("--web and six-digit, x-www"))
      assert.equal("\\&.config and \\(aqa\\(aq \\(gab\\(ga \\e", doc.esc(".config and 'a' `b` \\"))
    end)
  end)

  describe("the files in the tree", function()
    for _, case in ipairs {
      { "completions/smugoauth.bash", { "completion", "bash" } },
      { "completions/_smugoauth", { "completion", "zsh" } },
      { "man/smugoauth.1", { "help", "--man" } },
    } do
      it(case[1] .. " is what `smugoauth " .. table.concat(case[2], " ") .. "` prints (make generated)", function()
        local rc, out, err = call(case[2])
        assert.equal(0, rc)
        assert.equal("", err)
        assert(out == read_file(case[1]), case[1] .. " is not current: run `make generated`")
      end)
    end

    it("completion needs bash or zsh", function()
      local rc, out, err = call { "completion", "fish" }
      local _
      assert.equal(2, rc)
      assert.equal("", out)
      assert.matches("SHELL must be bash or zsh", err)
      rc, _, err = call { "help", "--man", "login" }
      assert.equal(2, rc)
      assert.matches("%-%-man takes no COMMAND", err)
    end)
  end)

  describe("bash completion", function()
    local script = ROOT .. "/completions/smugoauth.bash"
    local dir
    setup(function()
      dir = tmpdir()
      write_file(dir .. "/photo one.jpg", "x")
      write_file(dir .. "/photo-two.jpg", "x")
      os.execute("mkdir " .. q(dir .. "/album"))
    end)
    teardown(function() if dir then os.execute("rm -rf " .. q(dir)) end end)

    it("parses (bash -n)", function()
      local rc, out, err = proc.run("bash -n " .. q(script), { timeout = 20 })
      assert.equal(0, rc, err)
      assert.equal("", out .. err)
    end)

    -- What the script offers for line, without and with bash-completion.
    local function offers(line, with_bc)
      local rc, out, err = proc.run("timeout 20 bash --norc --noprofile " ..
        q(ROOT .. "/spec/support/complete.bash") .. " " .. q(script) .. " " .. q(line) ..
        (with_bc and (" " .. q(BASH_COMPLETION)) or ""), { cwd = dir, timeout = 30 })
      assert.equal(0, rc, line .. ": " .. err)
      return set_of(out)
    end

    for _, with_bc in ipairs { false, true } do
      local label = with_bc and "with bash-completion" or "on its own"
      it("offers every command and every option of each, " .. label, function()
        if with_bc then assert(io.open(BASH_COMPLETION), "bash-completion is not installed (.ci/deps.sh)"):close() end
        local cmds = {}
        for _, cmd in ipairs(describe_cli.commands) do cmds[cmd.name] = true end
        assert.same(cmds, offers("smugoauth ", with_bc))
        assert.same(all_options(describe_cli, nil), offers("smugoauth -", with_bc))
        for _, cmd in ipairs(describe_cli.commands) do
          assert.same(all_options(describe_cli, cmd), offers("smugoauth --debug " .. cmd.name .. " -", with_bc))
        end
      end)

      it("offers the values of options and arguments, " .. label, function()
        assert.same({ Full = true, Public = true }, offers("smugoauth login --access ", with_bc))
        assert.same({ Public = true }, offers("smugoauth login --access=P", with_bc))
        assert.same({ Read = true }, offers("smugoauth --debug login --web --permissions R", with_bc))
        assert.same({ ["photo one.jpg"] = true, ["photo-two.jpg"] = true }, offers("smugoauth --config ph", with_bc))
        assert.same({ ["photo one.jpg"] = true, ["photo-two.jpg"] = true },
          offers("smugoauth whoami --credentials=ph", with_bc))
        assert.same({}, offers("smugoauth upload ", with_bc))                  -- ALBUM: a key, not a file
        assert.same({ album = true, ["photo one.jpg"] = true, ["photo-two.jpg"] = true },
          offers("smugoauth upload K1 photo-two.jpg ", with_bc))
        assert.same({ config = true, completion = true }, offers("smugoauth help co", with_bc))
        assert.same({ bash = true, zsh = true }, offers("smugoauth completion ", with_bc))
        assert.same({}, offers("smugoauth get -q ", with_bc))                  -- NAME=VALUE: nothing to offer
        assert.same({}, offers("smugoauth get /api/v2!authuser ", with_bc))    -- one PATH only
      end)
    end
  end)

  describe("zsh completion", function()
    local folder = ROOT .. "/completions"
    local dir
    setup(function()
      dir = tmpdir()
      write_file(dir .. "/photo.jpg", "x")
      os.execute("mkdir " .. q(dir .. "/album"))
    end)
    teardown(function() if dir then os.execute("rm -rf " .. q(dir)) end end)

    it("zsh is installed (.ci/deps.sh)", function()
      assert.is_true(is_installed("zsh"))
    end)

    it("parses (zsh -n)", function()
      local rc, out, err = proc.run("zsh -n " .. q(folder .. "/_smugoauth"), { timeout = 20 })
      assert.equal(0, rc, err)
      assert.equal("", out .. err)
    end)

    local function offers(line)
      local rc, out, err = proc.run("timeout 30 zsh -f " .. q(ROOT .. "/spec/support/complete.zsh") .. " " ..
        q(folder) .. " " .. q(line), { cwd = dir, timeout = 40 })
      assert.equal(0, rc, line .. ": " .. err)
      return set_of(out)
    end

    it("offers every command and every option of each", function()
      local cmds = {}
      for _, cmd in ipairs(describe_cli.commands) do cmds[cmd.name] = true end
      assert.same(cmds, offers("smugoauth "))
      assert.same({ whoami = true }, offers("smugoauth --debug wh"))
      assert.same({ ["--compact"] = true, ["--config"] = true }, offers("smugoauth --co"))
      for _, cmd in ipairs(describe_cli.commands) do
        assert.same(all_options(describe_cli, cmd), offers("smugoauth " .. cmd.name .. " -"))
      end
    end)

    it("offers the values of options and arguments", function()
      assert.same({ Full = true, Public = true }, offers("smugoauth login --access "))
      assert.same({ Add = true, Modify = true, Read = true }, offers("smugoauth login --permissions="))
      assert.is_true(offers("smugoauth --config ph")["photo.jpg"])
      local upload = offers("smugoauth upload K1 ")
      assert.is_true(upload["photo.jpg"])
      assert.is_true(upload["album"])
      assert.is_nil(offers("smugoauth upload ")["photo.jpg"])              -- ALBUM: a key, not a file
      assert.same({ config = true, completion = true }, offers("smugoauth help co"))
      assert.same({ bash = true, zsh = true }, offers("smugoauth completion "))
    end)
  end)

  describe("man page", function()
    local page = ROOT .. "/man/smugoauth.1"

    it("renders with man -l at 80 columns without a warning", function()
      local rc, out, err = proc.run("man --warnings -l " .. q(page),
                                    { env = { MANWIDTH = "80", MAN_KEEP_FORMATTING = false }, timeout = 30 })
      assert.equal(0, rc, err)
      assert.equal("", err)
      out = out:gsub(".\b", "")                                   -- overstrike bold, if any
      assert.matches("^SMUGOAUTH%(1%)%s+User Commands%s+SMUGOAUTH%(1%)\n", out)
      for _, section in ipairs { "NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "GLOBAL OPTIONS", "FILES",
                                 "ENVIRONMENT", "EXIT STATUS" } do
        assert.matches("\n" .. section .. "\n", out, 1, true)
      end
      for _, cmd in ipairs(describe_cli.commands) do
        assert.matches("\n   " .. cmd.name .. "\n", out, 1, true)
        for name in pairs(all_options(describe_cli, cmd)) do
          assert.matches("%f[%w%-]" .. name:gsub("%-", "%%-") .. "%f[^%w%-]", out)
        end
      end
      for line in out:gmatch("[^\n]+") do
        assert((utf8.len(line) or #line) <= 80, "a line over 80 columns: " .. line)
      end
      assert.matches("$XDG_CONFIG_HOME/smugoauth/config.json", out, 1, true)
    end)

    it("has no groff warning of any kind, and a NAME line whatis can read", function()
      local rc, out, err = proc.run("groff -man -ww -z -Tutf8 " .. q(page), { timeout = 30 })
      assert.equal(0, rc, err)
      assert.equal("", out .. err)
      rc, out = proc.run("lexgrog " .. q(page), { timeout = 30 })
      assert.equal(0, rc)
      assert.matches('"smugoauth %- call the SmugMug API v2', out)
    end)
  end)
end)
