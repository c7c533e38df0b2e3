-- bomb: misbehaves by allocating without bound. The worker's memory limit stops it.
function on_tick(world, state, frame)
  local hoard = {}
  local s = "x"
  while true do
    s = s .. s
    hoard[#hoard + 1] = s
  end
end
