-- wrk: rotate API keys read from a file, one request per key in turn.
--   wrk -t1 -c64 -d10s -s wrk-keyfile.lua URL -- KEYFILE HEADER
-- Unlike ../shared/bench/wrk-keys.lua (which synthesizes key-000001 ...), this sends whatever keys
-- the file holds, so the gateway's own generated keys can be replayed against it and against
-- the nginx reference alike. Requests are pre-rendered so the client spends no time formatting.
local reqs, i = {}, 0
init = function(args)
  local file, header = args[1], args[2] or "x-Gateway-APIKey"
  for line in io.lines(file) do
    if #line > 0 then reqs[#reqs + 1] = wrk.format(nil, nil, {[header] = line}) end
  end
  if #reqs == 0 then error("no keys in " .. file) end
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
