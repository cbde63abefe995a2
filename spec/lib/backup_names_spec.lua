-- smugoauth.backup.names: the names a backup gives files and folders. Safe
-- on any file system and never outside the folder they are made in, cut to
-- 250 bytes on a UTF-8 boundary with the extension kept, and distinct in a
-- folder as a case-insensitive file system sees them -- deterministically:
-- the same set of images gives the same names whatever order it comes in.
local names = require "smugoauth.backup.names"

local sanitize, assign, fold = names.sanitize, names.assign, names.fold

-- Nothing in s that could leave a folder, reach a terminal or upset a file system.
local function assert_safe(s)
  assert.is_string(s)
  assert(#s >= 1 and #s <= names.MAX, ("%d bytes"):format(#s))
  assert(s ~= "." and s ~= "..", s)
  assert.is_nil(s:find("[%z\1-\31\127/\\<>:\"|?*]"), s)
  assert(utf8.len(s), "valid UTF-8: " .. s)
  assert.is_nil(s:find("\194[\128-\159]"), "no C1 control")
  assert.is_nil(s:find("\226\128[\170-\174]"), "no bidi override")
  assert.is_nil(s:find("[ .]$"), "no trailing dot or space: " .. s)
  assert.is_nil(s:find("^ "), "no leading space")
end

describe("backup names", function()
  it("keep ordinary names as they are", function()
    for _, n in ipairs { "IMG_0001.JPG", "beach.jpg", "Été à Paris.jpeg", "日本.png", ".hidden.jpg", "-rf.jpg",
                         "$(touch x).jpg", "a b c", "2023" } do
      assert.equal(n, sanitize(n, "file"))
    end
  end)

  it("can never leave the folder: separators, dots, absolute paths", function()
    assert.equal(".._.._etc_passwd", sanitize("../../etc/passwd", "file"))
    assert.equal("_etc_passwd", sanitize("/etc/passwd", "file"))
    assert.equal("C__evil.jpg", sanitize("C:\\evil.jpg", "file"))
    assert.equal("a_.._b.jpg", sanitize("a/../b.jpg", "file"))
    assert.equal("~_.ssh_authorized_keys", sanitize("~/.ssh/authorized_keys", "file"))
    for _, n in ipairs { ".", "..", "...", " . ", "", "   ", ". .." } do
      assert.is_nil(sanitize(n, "file"), ("%q"):format(n))
      assert.is_nil(sanitize(n, "dir"), ("%q"):format(n))
    end
    assert.is_nil(sanitize(nil, "file"))
    assert.is_nil(sanitize(42, "file"))
  end)

  it("replaces NUL, controls, C1 and bidi controls, invalid UTF-8 and what Windows refuses", function()
    assert.equal("nul_byte.jpg", sanitize("nul\0byte.jpg", "file"))
    assert.equal("ctrl__[31mred.jpg", sanitize("ctrl\1\27[31mred.jpg", "file"))
    assert.equal("new_line.jpg", sanitize("new\nline.jpg", "file"))
    assert.equal("a_gpj.exe", sanitize("a\u{202e}gpj.exe", "file"))
    assert.equal("c1_x", sanitize("c1\u{9b}x", "file"))
    assert.equal("bad__.jpg", sanitize("bad\xff\xfe.jpg", "file"))
    assert.equal("over__long.jpg", sanitize("over\xc0\xaflong.jpg", "file"))    -- an overlong encoding
    assert.equal("sur__.jpg", sanitize("sur\xed\xa0\x80.jpg", "file"):gsub("_+", "__"))    -- a surrogate
    assert.equal("a_b_c_d_e_f_g_h.jpg", sanitize("a<b>c:d\"e|f?g*h.jpg", "file"))
  end)

  it("drops trailing dots and spaces, and leading spaces", function()
    assert.equal("trailing.jpg", sanitize("trailing.jpg.", "file"))
    assert.equal("trailing space.jpg", sanitize("trailing space.jpg ", "file"))
    assert.equal("dots", sanitize("dots...", "file"))
    assert.equal("trail", sanitize("trail. ", "dir"))
    assert.equal("x", sanitize("  x", "dir"))
  end)

  it("changes Windows device names, in any case, with or without an extension", function()
    assert.equal("CON_", sanitize("CON", "dir"))
    assert.equal("con_.jpg", sanitize("con.jpg", "file"))
    assert.equal("NUL_.txt", sanitize("NUL.txt", "file"))
    assert.equal("COM1_.jpg", sanitize("COM1.jpg", "file"))
    assert.equal("LPT9_", sanitize("LPT9", "file"))
    assert.equal("aux_.tar.gz", sanitize("aux.tar.gz", "file"))
    assert.equal("CONSOLE.jpg", sanitize("CONSOLE.jpg", "file"))    -- not a device
  end)

  it("never gives our own folder's name nor a .part name", function()
    assert.equal("_.smugoauth", sanitize(".smugoauth", "dir"))
    assert.equal("_.SmugOAuth-x", sanitize(".SmugOAuth-x", "dir"))
    assert.equal("name.jpg.part_", sanitize("name.jpg.part", "file"))
    assert.equal("x.PART_", sanitize("x.PART", "file"))
  end)

  it("cuts long names to 250 bytes on a UTF-8 boundary, keeping the extension", function()
    local s = sanitize(("a"):rep(296) .. ".jpg", "file")
    assert.equal(250, #s)
    assert.matches("^a+%.jpg$", s)
    s = sanitize(("\u{e9}"):rep(150) .. ".jpg", "file")             -- 2-byte characters
    assert(#s <= 250)
    assert.matches("%.jpg$", s)
    assert(utf8.len(s), "cut on a boundary")
    s = sanitize(("\u{65e5}"):rep(100), "dir")                       -- 3-byte characters, no extension
    assert(#s <= 250 and #s >= 247)
    assert(utf8.len(s))
    -- an "extension" too long to be one is cut like the rest
    s = sanitize("x." .. ("y"):rep(300), "file")
    assert.equal(250, #s)
  end)

  it("makes every hostile name safe", function()
    local hostile = { "..", ".", "../../escape.jpg", "/etc/passwd", "/absolute.jpg", "\\windows\\system32.jpg",
      "C:\\evil.jpg", "nul\0byte.jpg", "ctrl\1\27[31mred.jpg", "new\nline.jpg", "tab\tname.jpg",
      ("a"):rep(296) .. ".jpg", ("\u{e9}"):rep(150) .. ".jpg", "trailing.jpg.", "trailing space.jpg ",
      "dots...", "CON", "con.jpg", "NUL.txt", "COM1.jpg", "LPT9", "AUX.jpg", "PRN", "", "   ",
      "a/../../b.jpg", "~/.ssh/authorized_keys", "name.jpg.part", "\u{202e}gpj.exe", "\xff\xfe" }
    for _, h in ipairs(hostile) do
      local s = sanitize(h, "file")
      if s then assert_safe(s) end
      s = sanitize(h, "dir")
      if s then assert_safe(s) end
    end
  end)

  it("folds case as case-insensitive file systems do", function()
    assert.equal(fold("IMG.JPG"), fold("img.jpg"))
    assert.equal(fold("ÉTÉ"), fold("été"))
    assert.equal(fold("ĀĹŸ"), fold("āĺÿ"))
    assert.equal(fold("ΑΩ ДЖ Ё"), fold("αω дж ё"))
    assert.are_not.equal(fold("a"), fold("b"))
  end)

  describe("assign", function()
    local function names_of(list, kind)
      local copy = {}
      for i, e in ipairs(list) do copy[i] = { id = e[1], want = e[2] } end
      assign(copy, kind)
      local out = {}
      for _, e in ipairs(copy) do out[e.id] = e.name end
      return out
    end

    it("keeps distinct names, and gives the colliding ones (case-insensitive) the id", function()
      local got = names_of { { "B", "IMG.jpg" }, { "A", "img.JPG" }, { "C", "IMG.jpg" }, { "E", "x.jpg" } }
      assert.same({ A = "img.JPG", B = "IMG (B).jpg", C = "IMG (C).jpg", E = "x.jpg" }, got)
      local seen = {}
      for _, n in pairs(got) do
        assert.is_nil(seen[fold(n)], n)
        seen[fold(n)] = true
      end
    end)

    it("never collides, even with a name that looks like a suffixed one", function()
      local got = names_of { { "B", "IMG.jpg" }, { "A", "IMG.jpg" }, { "D", "IMG (B).jpg" } }
      assert.equal("IMG.jpg", got.A)
      assert.equal("IMG (B).jpg", got.D)
      assert.equal("IMG (B-2).jpg", got.B)
    end)

    it("depends on the set only: every order gives the same names", function()
      local base = { { "K3", "dup.jpg" }, { "K1", "DUP.JPG" }, { "K2", "dup.jpg" }, { "K4", "dup (K2).jpg" },
                     { "K5", "other.png" }, { "K0", "Dup.jpg" } }
      local want = names_of(base)
      math.randomseed(12)
      for _ = 1, 50 do
        local shuffled = {}
        for i, e in ipairs(base) do shuffled[i] = e end
        for i = #shuffled, 2, -1 do
          local j = math.random(i)
          shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
        end
        assert.same(want, names_of(shuffled))
      end
    end)

    it("folders: the suffix goes at the end; long names keep their suffix within 250 bytes", function()
      assert.same({ N1 = "Trip", N2 = "trip (N2)" }, names_of({ { "N2", "trip" }, { "N1", "Trip" } }, "dir"))
      assert.same({ N1 = "a.b", N2 = "a.b (N2)" }, names_of({ { "N2", "a.b" }, { "N1", "a.b" } }, "dir"))
      local long = ("x"):rep(250)
      local got = names_of { { "A", long .. ".jpg" }, { "B", long .. ".jpg" } }
      assert.equal(250, #got.B)
      assert.matches(" %(B%)%.jpg$", got.B)
    end)

    it("raises on entries without a string id and name", function()
      assert.has_error(function() assign({ { id = 1, want = "x" } }, "file") end)
    end)
  end)
end)
