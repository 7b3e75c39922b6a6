-- LuaSocket's own filter chains, for bench/encode.py: reads a file through ltn12 and mime and
-- counts the output. Usage: lua5.4 encode.lua base64|qp|stuff PATH
-- Prints one JSON line: {"seconds": ..., "units": input bytes, "baseline_kib": 0, "peak_kib": 0}
-- (the harness takes peak RSS from /usr/bin/time for this process).
local ltn12 = require("ltn12")
local mime = require("mime")
local socket = require("socket")

local kind, path = arg[1], arg[2]
local file = assert(io.open(path, "rb"))
local size = file:seek("end")
file:seek("set", 0)

local filter
if kind == "base64" then
  filter = ltn12.filter.chain(mime.encode("base64"), mime.wrap())
elseif kind == "qp" then
  filter = ltn12.filter.chain(mime.normalize(), mime.encode("quoted-printable"),
    mime.wrap("quoted-printable"))
elseif kind == "stuff" then
  filter = ltn12.filter.chain(mime.normalize(), mime.stuff())
else
  error("unknown kind " .. tostring(kind))
end

local out = 0
local function sink(chunk)
  if chunk then out = out + #chunk end
  return 1
end

local start = socket.gettime()
assert(ltn12.pump.all(ltn12.source.chain(ltn12.source.file(file), filter), sink))
local seconds = socket.gettime() - start
io.write(string.format('{"seconds": %.6f, "units": %d, "out": %d}\n', seconds, size, out))
