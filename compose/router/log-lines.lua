-- The router's log lines, written to stdout a batch at a time.
--
-- HAProxy writes every log line with a write of its own, and Docker wakes
-- two processes (containerd-shim, dockerd) for each: about 0.1 ms of CPU a
-- request, on the cores the router shares with web and Postgres. So
-- haproxy.cfg logs into a ring buffer, and this task follows the ring
-- through HAProxy's CLI (`show events <ring> -w`, as an operator would) and
-- writes what has come every 50 ms: a line reaches `make logs` at most that
-- much later. When HAProxy stops, the task writes the lines of the requests
-- it lets finish, then ends its CLI session, which HAProxy waits for before
-- it exits.
--
-- The write to stdout blocks HAProxy until the pipe takes it, where its own
-- `log stdout` dropped lines instead: docker-compose.yml has Docker read the
-- router's output in non-blocking mode, so a slow log pipeline costs lines,
-- never requests.
local CLI = "abns@router-cli"
local RING = "router-log"
local EVERY_MS = 50

local pending = {}
local cli = nil
local stopping = false

-- A line's dyno fields as Heroku's router writes them where HAProxy's differ.
-- A request that reached no dyno (H10, or refused before routing: H26, H28)
-- has them empty, where HAProxy writes dyno=- connect=-1ms and the error
-- page's size; one the router answered after reaching a dyno (H12, H13,
-- H25) has bytes=0, for no byte came from the dyno. Both patterns are
-- anchored at the line's ends, which the router writes, so a path that
-- quotes them changes nothing.
local NO_DYNO = " dyno=%- connect=%-1ms service=%d+ms (status=%d+) bytes=%d+ (protocol=https?)$"
local ROUTER_ANSWERED = "( status=%d+) bytes=%d+ (protocol=https?)$"

local function as_heroku_writes(line)
    local fixed, found = line:gsub(NO_DYNO, " dyno= connect= service= %1 bytes= %2")
    if found == 0 and (line:find("^at=error code=H") or line:find("^sock=%a+ at=error code=H")) then
        fixed = line:gsub(ROUTER_ANSWERED, "%1 bytes=0 %2")
    end
    return fixed
end

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

-- Follows the ring. A session that ends while HAProxy runs on (it should
-- not) is followed again from the ring's end, with a line saying so.
core.register_task(function()
    local from_end = ""
    while not stopping do
        cli = core.tcp()
        local connected, why = cli:connect(CLI)
        if connected then
            cli:send("show events " .. RING .. " -w" .. from_end .. "\n")
            while true do
                local line, err = cli:receive("*l")
                if not line then
                    why = err
                    break
                end
                pending[#pending + 1] = as_heroku_writes(line)
            end
        end
        if stopping then
            break
        end
        pending[#pending + 1] = "router: log lines may be missing here (" .. tostring(why) .. "); following again"
        write_pending()
        from_end = " -n"
        core.msleep(1000)
    end
    write_pending()
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
            if cli then
                cli:close()
            end
            write_pending()
            return
        end
    end
end)
