-- medic: keeps its own state between frames (the host passes back what it returned) and
-- heals the weakest entity of the host's world every 5th tick it has seen, writing it in the
-- game's log. Well behaved.
function on_tick(state, frame)
  state = state or {ticks = 0, healed = 0}
  state.ticks = state.ticks + 1
  local actions = {}
  if state.ticks % 5 == 0 then
    local weakest
    for _, e in ipairs(host.world()) do
      if not weakest or e.hp < weakest.hp then weakest = e end
    end
    actions[1] = {op = "heal", id = weakest.id, amount = 10}
    state.healed = state.healed + 1
    host.log("medic heals entity " .. weakest.id .. " (hp " .. weakest.hp .. ")")
  end
  return actions, state
end
