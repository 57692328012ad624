-- wrk script: the scenario's request (benches/post.lua, with its summary line) with a larger
-- body, read from the file WF_BENCH_BODY (benches/scale-bodies.sh writes it).
dofile("benches/post.lua")
local file = assert(io.open(os.getenv("WF_BENCH_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()
