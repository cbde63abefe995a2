--- support.sandbox: the SmugMug sandbox (examples/sandbox.lua) in a child
-- process for specs -- smugoauth.apps.sandbox.launch, the launcher `make demo`
-- uses too, with `start` raising when the sandbox does not come up.
--
--     local sandbox = require "support.sandbox"
--     local sb = sandbox.start{ key = "k", secret = "s" }   -- sb.origin, sb.port
--     local verifier = sb:approve(request_token)
--     sb:mode{ fail429 = 2, retry_after = 0 }
--     sb:stop()    -- always, in teardown
local launch = require "smugoauth.apps.sandbox.launch"

local M = {}

--- Start a sandbox (options: see smugoauth.apps.sandbox.launch); raises
-- when it does not come up.
function M.start(opts)
  return assert(launch.start(opts))
end

M.q = require("support.proc").q    -- older specs quote through sandbox.q

return M
