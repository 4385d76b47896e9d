-- Shared by every kind's health check: `aiops-dev argocd` puts this in front of each <Kind>.lua, because an
-- argocd-cm health snippet must stand alone. Plain Lua 5.1 (Argo CD runs gopher-lua).

local function condition(status, ctype)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function with(prefix, detail)
  if detail == nil or detail == "" then
    return prefix
  end
  return prefix .. ": " .. detail
end

-- What every kind says before looking at its own phases: no status yet (`waiting`), a generation the
-- operator has not processed, a spec it rejected (Ready=False, InvalidSpec), and, for kinds with a
-- phase (`phased`), no phase yet. Returns the health (or nil to go on), the status, the Ready condition.
local function before_phases(obj, waiting, phased)
  local s = obj.status
  local generation = obj.metadata and obj.metadata.generation
  local ready = condition(s, "Ready")
  if s == nil then
    return {status = "Progressing", message = waiting}, s, ready
  end
  if generation ~= nil and (s.observedGeneration == nil or s.observedGeneration < generation) then
    return {status = "Progressing", message = "Waiting for the operator to process generation " .. tostring(generation)},
      s, ready
  end
  if ready ~= nil and ready.status == "False" and ready.reason == "InvalidSpec" then
    return {status = "Degraded", message = ready.message}, s, ready
  end
  if phased and s.phase == nil then
    if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
      return {status = "Progressing", message = ready.message}, s, ready
    end
    return {status = "Progressing", message = waiting}, s, ready
  end
  return nil, s, ready
end
