-- mover: walks every entity one step towards the centre. Well behaved.
function on_tick(state, frame)
  local actions = {}
  for _, e in ipairs(host.world()) do
    local dx = e.x > 0 and -1 or (e.x < 0 and 1 or 0)
    local dy = e.y > 0 and -1 or (e.y < 0 and 1 or 0)
    if dx ~= 0 or dy ~= 0 then
      actions[#actions + 1] = {op = "move", id = e.id, dx = dx, dy = dy}
    end
  end
  return actions, state
end
