-- Requests that arrive while the web dynos boot wait for one, as on Heroku.
--
-- Heroku's router queues a request for up to 75 s while the app's web
-- dynos are starting, and answers H20 (App boot timeout) if none is up by
-- then ("Error Codes"); only with no dyno starting at all is it H10 at
-- once. HAProxy alone answers 503 the moment no server is up, so during
-- make restart, a rebuild or a scale from 0, a browser's reload failed.
--
-- haproxy.cfg calls this action only when no dyno takes requests
-- (nbsrv(web) is 0), so a request to a running app never comes here. A
-- dyno is starting when its container runs (Docker's DNS has its address)
-- and it does not accept connections yet: HAProxy has it DOWN. One that
-- make restart or make scale drained before its SIGTERM (DRAIN) is about
-- to be replaced or gone: waited for too. A dyno whose name Docker's DNS
-- no longer knows is MAINT (resolution): Compose leaves that gap as it
-- replaces a container (stop, remove, rename the new one, start it), so
-- such a dyno is waited for while drained, or for GONE_GRACE_S after it
-- went; one gone for longer (crashed, stopped, scaled away) is not.
local BACKEND = "web"
local BOOT_WAIT_MS = 75000
local GONE_GRACE_S = 3
local EVERY_MS = 100

local function now_ms()
    local now = core.now()
    return now.sec * 1000 + now.usec // 1000
end

-- Whether the router will send this dyno requests soon (its stats: HAProxy's).
local function starting(server, stats)
    local status = stats.status
    if status:find("^DOWN") or status:find("^DRAIN") then
        return true
    end
    if not status:find("^MAINT %(resolution%)") then
        return false -- MAINT set by hand (the runtime API), or no check
    end
    local draining = server:is_draining()
    return draining == true or draining == 1 or (tonumber(stats.lastchg) or GONE_GRACE_S) < GONE_GRACE_S
end

-- Whether some dyno takes requests, and whether some dyno is starting.
local function dynos()
    local up, coming = false, false
    for _, server in pairs(core.backends[BACKEND].servers) do
        local stats = server:get_stats()
        if stats.status:find("^UP") then
            up = true
        elseif starting(server, stats) then
            coming = true
        end
    end
    return up, coming
end

-- Sets txn.boot to "timeout" when no dyno came up within Heroku's 75 s;
-- otherwise returns once one is up, or none is starting (then: H10), or
-- HAProxy is stopping (make down: no request is held past it).
core.register_action("wait_for_booting_dyno", { "http-req" }, function(txn)
    local deadline = now_ms() + BOOT_WAIT_MS
    while true do
        local up, coming = dynos()
        if up or not coming or tostring(core.get_info().Stopping) == "1" then
            return
        end
        if now_ms() >= deadline then
            txn:set_var("txn.boot", "timeout")
            return
        end
        core.msleep(EVERY_MS)
    end
end)
