-- raiser: raises an error every third frame. The host counts strikes, restarts it with a
-- fresh state after each error, and disables it after three errors in a row... which never
-- happen in a row here, so it keeps running between its errors.
function on_tick(state, frame)
  state = state or {calls = 0}
  state.calls = state.calls + 1
  if frame % 3 == 0 then
    error("raiser: refusing frame " .. frame)
  end
  return {}, state
end
