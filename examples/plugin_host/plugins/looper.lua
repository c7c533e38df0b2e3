-- looper: misbehaves by never returning, even hiding its loop inside pcall.
-- The host's per-frame deadline interrupts it; the host disables it.
function on_tick(state, frame)
  while true do
    pcall(function() while true do end end)
  end
end
