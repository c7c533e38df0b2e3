-- Functions for the interp-pool command's tests (tests/cli/*.sh).
function upper(s) return s:upper() end
function length(s) return #s end
function as_number(s) return tonumber(s) end
function record(s) return {word = s, len = #s, vowels = select(2, s:gsub("[aeiou]", ""))} end
function several(s) return s, #s, #s / 2, true, nil end
function nothing(s) end
function picky(s)
  if s:find("bad", 1, true) then error("refusing '" .. s .. "'") end
  return s
end
function shared(s) local t = {s, s} return {a = t, b = t, list = {t, t}} end
function cyclic(s) local t = {name = s} t.self = t return t end
function chatty(s) print("seen " .. s) return s end

-- JSON values in, JSON values out
function double(v)
  if type(v) == "number" then return v * 2 end
  if type(v) == "string" then return v .. v end
  if type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do out[k] = double(x) end
    return out
  end
  return v
end
function kind(v) return type(v) == "number" and math.type(v) or type(v) end
function sum(list) local s = 0 for _, x in ipairs(list) do s = s + x end return s end
