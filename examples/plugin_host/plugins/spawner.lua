-- spawner: every 10th frame asks the host for a new entity at a place drawn from the host's
-- seeded generator (host.rand), through host.spawn: the request goes to the host through a
-- channel and the entity appears after the frame. Well behaved.
function on_tick(state, frame)
  if frame % 10 == 0 then
    local x, y = host.rand(21) - 11, host.rand(21) - 11
    host.spawn(x, y)
    host.log(string.format("spawner asks for an entity at (%d, %d)", x, y))
  end
  return {}, state
end
