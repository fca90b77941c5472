-- The router's log lines, written to stdout a batch at a time.
--
-- HAProxy writes every log line with a write of its own, and Docker wakes
-- two processes (containerd-shim, dockerd) for each: about 0.1 ms of CPU a
-- request, on the cores the router shares with web and Postgres. So
-- haproxy.cfg logs into a ring buffer, and this task follows the ring
-- through HAProxy's CLI (`show events <ring> -w`, as an operator would) and
-- writes what has come every 50 ms: a line reaches `make logs` at most that
-- much later. When HAProxy stops, the task writes the lines of
-- the requests it lets finish, then ends its CLI session, which HAProxy
-- waits for before it exits.
local CLI = "abns@router-cli"
local RING = "router-log"
local EVERY_MS = 50

local pending = {}
local cli = nil
local stopping = false

local function write_pending()
    if #pending > 0 then
        io.stdout:write(table.concat(pending, "\n"), "\n")
        io.stdout:flush()
        pending = {}
    end
end

-- HAProxy is stopping and every connection is gone: no line is to come.
local function all_done()
    local info = core.get_info()
    return tostring(info.Stopping) == "1" and tonumber(info.CurrConns) == 0
end

core.register_task(function()
    cli = core.tcp()
    local connected, why = cli:connect(CLI)
    if not connected then
        core.Alert("router log lines cannot be read from " .. CLI .. ": " .. tostring(why))
        return
    end
    cli:send("show events " .. RING .. " -w\n")
    while true do
        local line, err = cli:receive("*l")
        if not line then
            if not stopping then
                pending[#pending + 1] = "router: no more log lines (" .. tostring(err) .. ")"
            end
            write_pending()
            return
        end
        pending[#pending + 1] = line
    end
end)

core.register_task(function()
    local quiet = 0
    while true do
        core.msleep(EVERY_MS)
        write_pending()
        -- Twice in a row, so a line on its way through the CLI is written too.
        quiet = all_done() and quiet + 1 or 0
        if quiet == 2 then
            stopping = true
            cli:close()
            write_pending()
            return
        end
    end
end)
