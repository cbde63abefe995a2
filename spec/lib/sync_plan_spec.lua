--- smugoauth.sync.plan: what sync does with each local file, from its MD5,
-- the album's listing and the manifest's rows (a pure function).
local plan = require("smugoauth.sync.plan").plan

local function file(name, md5) return { name = name, rel = name, path = "/d/" .. name, size = 1, md5 = md5 } end

local function listing(images)
  local l = { by_md5 = {}, keys = {}, by_name = {} }
  for _, img in ipairs(images) do
    l.keys[img.key] = img
    if img.md5 then l.by_md5[img.md5] = img.key end
    l.by_name[img.name] = l.by_name[img.name] or {}
    table.insert(l.by_name[img.name], img.key)
  end
  return l
end

local function actions(p)
  local t = {}
  for i, a in ipairs(p) do t[i] = a.action .. (a.key and (":" .. a.key) or "") end
  return t
end

local A, B, C = ("a"):rep(32), ("b"):rep(32), ("c"):rep(32)

describe("sync plan", function()
  it("uploads what the album lacks, skips what it has by MD5 whatever the name", function()
    local p = plan({ file("x.jpg", A), file("renamed.jpg", B) },
                   listing { { key = "K1", md5 = B, name = "original.jpg" } }, {})
    assert.same({ "upload", "present:K1" }, actions(p))
  end)

  it("the same MD5 under another name in the album is still present (a local rename)", function()
    local p = plan({ file("new-name.jpg", A) }, listing { { key = "K9", md5 = A, name = "old-name.jpg" } }, {})
    assert.same({ "present:K9" }, actions(p))
  end)

  it("a file the manifest knows as uploaded (converted: another MD5 on SmugMug) is known", function()
    local rows = { [A] = { md5 = A, state = "done", image_key = "K1", filename = "x.heic" } }
    local p = plan({ file("x.heic", A) }, listing { { key = "K1", md5 = C, name = "x.jpg" } }, rows)
    assert.same({ "known:K1" }, actions(p))
  end)

  it("uploads again when the image the manifest names is gone from the album", function()
    local rows = { [A] = { md5 = A, state = "done", image_key = "GONE", filename = "x.heic" } }
    local p = plan({ file("x.heic", A) }, listing {}, rows)
    assert.same({ "upload" }, actions(p))
    assert.is_true(p[1].forget)
  end)

  it("a pending upload is adopted by the file name it was sent with, when no file accounts for that image",
    function()
      local rows = { [A] = { md5 = A, state = "pending", filename = "x.heic" },
                     [B] = { md5 = B, state = "done", image_key = "K2", filename = "x.heic" } }
      -- K2 is B's (done); K3 has the name and nobody's: A's upload made it
      local l = listing { { key = "K2", md5 = C, name = "x.heic" }, { key = "K3", md5 = C, name = "x.heic" } }
      local p = plan({ file("x.heic", A), file("y.heic", B) }, l, rows)
      assert.same({ "adopt:K3", "known:K2" }, actions(p))
    end)

  it("a pending upload with no such image, or only claimed ones, is uploaded", function()
    local rows = { [A] = { md5 = A, state = "pending", filename = "x.heic" } }
    assert.same({ "upload" }, actions(plan({ file("x.heic", A) }, listing {}, rows)))
    -- the only image of that name is another local file's, by MD5
    local l = listing { { key = "K5", md5 = B, name = "x.heic" } }
    assert.same({ "upload", "present:K5" }, actions(plan({ file("x.heic", A), file("b.jpg", B) }, l, rows)))
  end)

  it("the MD5 in the album wins over a pending row", function()
    local rows = { [A] = { md5 = A, state = "pending", filename = "x.jpg" } }
    local p = plan({ file("x.jpg", A) }, listing { { key = "K1", md5 = A, name = "x.jpg" } }, rows)
    assert.same({ "present:K1" }, actions(p))
    assert.equal(rows[A], p[1].row)
  end)

  it("two local files with one MD5: one upload, the other a duplicate of the first", function()
    local p = plan({ file("a.jpg", A), file("copy.jpg", A) }, listing {}, {})
    assert.same({ "upload", "duplicate" }, actions(p))
    assert.equal("a.jpg", p[2].of.name)
  end)

  it("a file that could not be read fails", function()
    local f = file("bad.jpg", nil)
    f.err = { code = "io", message = "cannot open" }
    assert.same({ "fail" }, actions(plan({ f }, listing {}, {})))
  end)
end)
