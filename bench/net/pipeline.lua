-- wrk script for bench/net.sh's "pipe" benchmark: every write carries 16
-- GET requests (HTTP/1.1 pipelining), so the server parses many requests
-- per read and should answer them in one write. wrk counts each response.
local depth = 16

init = function(args)
    local r = {}
    for i = 1, depth do
        r[i] = wrk.format(nil, "/")
    end
    batch = table.concat(r)
end

request = function()
    return batch
end
