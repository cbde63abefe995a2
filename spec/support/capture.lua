-- support.capture: stand-ins for stdout and stderr that keep what is
-- written, for running the CLI (smugoauth.apps.cli.main) in-process.
--   local out = capture.sink(); out:write("a", 1); out.text() --> "a1"
local M = {}

--- A file-like sink (`write(...)`, `flush()`) whose `text()` is all that
-- was written, each value through tostring.
function M.sink()
  local parts = {}
  return {
    write = function(self, ...)
      for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
      return self
    end,
    flush = function() end,
    text = function() return table.concat(parts) end,
  }
end

return M
