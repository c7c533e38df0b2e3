-- bomb: misbehaves by allocating without bound (four times more at every step). The worker's
-- memory limit stops it; the host disables it.
function on_tick(state, frame)
  local hoard = {}
  local s = ("x"):rep(1024)
  while true do
    s = s:rep(4)
    hoard[#hoard + 1] = s
  end
end
